"""Generate example images locally: the LoRA at one or more weights over a small prompt set
built from its trigger words, through a model profile; results become example images.

One ``example_generate`` Job runs the plan (prompt × weight): for each item it creates a
generation with :func:`images.services.generation_create` (not enqueued) and runs it in the
same task with :func:`images.services.generation_run`, then copies every finished image in
with :func:`example_images.services.files.example_store_generated`. The job's ``result.done``
lists finished plan items, so a re-delivered task does not generate them again.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import transaction

from core.exceptions import ApplicationError
from jobs.kernel import JobCanceled, JobRun, job_run
from jobs.models import Job
from jobs.services import job_create, job_enqueue, job_save
from loras.models import LoraModel
from providers import registry
from providers.selectors import profile_get

from ..files import lora_folder
from ..selectors import GENERATE_KIND
from ..tasks import example_generate_run as example_generate_run_task

MAX_PLAN = 24


def example_prompts(*, lora: LoraModel, prompts: list[str] | None = None) -> list[str]:
    """The prompt set: ``prompts`` when given, else ``EXAMPLE_IMAGES_GENERATE_PROMPTS`` with
    ``{triggers}`` replaced by the LoRA's trigger words (or its name when it has none)."""
    if prompts:
        return [p.strip() for p in prompts if p and p.strip()]
    triggers = ", ".join(w for w in (lora.trigger_words or []) if isinstance(w, str)) or lora.name
    return [t.format(triggers=triggers) for t in settings.EXAMPLE_IMAGES_GENERATE_PROMPTS]


def example_generate_start(*, user, lora: LoraModel, model: str | None = None,
                           weights: list[float] | None = None, prompts: list[str] | None = None,
                           seed: int | None = None, enqueue: bool = True) -> Job:
    """Plan prompt × weight generations of ``lora`` with profile ``model`` (default profile
    when empty) and create the queued ``example_generate`` job (enqueued on the provider's
    queue after commit). ``weights`` default ``EXAMPLE_IMAGES_GENERATE_WEIGHTS``; ``seed``
    fixed for every item (random when None) so weights compare like for like.

    Raises:
        ApplicationError: 400 ``unknown_model`` / ``lora_not_hashed`` / ``invalid`` (plan
            larger than 24 items or empty).
    """
    import random

    profile = profile_get(slug=model)
    lora_folder(lora.sha256)
    if lora.status != LoraModel.Status.PRESENT:
        raise ApplicationError("lora_not_present", "The LoRA file is not present.")
    weights = [float(w) for w in (weights or settings.EXAMPLE_IMAGES_GENERATE_WEIGHTS)]
    texts = example_prompts(lora=lora, prompts=prompts)
    plan = [{"prompt": p, "weight": w} for p in texts for w in weights]
    if not plan or len(plan) > MAX_PLAN:
        raise ApplicationError("invalid", f"Between 1 and {MAX_PLAN} generations (prompts × "
                               "weights) per request.", fields={"weights": ["Too many."]})
    seed = random.randint(0, 2**31) if seed is None or seed < 0 else int(seed)
    with transaction.atomic():
        job = job_create(kind=GENERATE_KIND, user=user, total_steps=len(plan),
                         message="Queued", celery_task_id=str(uuid.uuid4()))
        job.result = {"lora": lora.pk, "model": profile.slug, "seed": seed, "plan": plan,
                      "done": [], "examples": [], "errors": []}
        job_save(job=job, fields=["result"])
        if enqueue:  # recorded with the job, published at the commit (503: broker down)
            job_enqueue(job=job, task=example_generate_run_task, args=[str(job.pk)],
                        queue=registry.provider_queue(profile.provider))
    return job


def _plan_error(index: int, item: dict, *, code: str, reason: str) -> dict:
    """A failed plan item for ``result.errors``: ``{"item": '"<prompt>" at weight <w>',
    "index": plan index, "code", "reason", "message": the reason again (older clients)}``."""
    prompt = item["prompt"] if len(item["prompt"]) <= 80 else item["prompt"][:79] + "…"
    return {"item": f'"{prompt}" at weight {item["weight"]:g}', "index": index,
            "code": code, "reason": reason[:300], "message": reason[:300]}


def example_generate_run(*, job_id: str) -> Job:
    """Run the plan of job ``job_id`` (see the module doc) through the job kernel. Never
    raises: a failed generation is listed in ``result.errors`` (see :func:`_plan_error`) and
    the next one runs; the job
    succeeds with ``result.examples`` (example image ids), or fails ``generation_failed`` when
    none worked."""
    from images.models import GenerationRequest
    from images.services import generation_create, generation_run

    from .files import example_store_generated

    def work(run: JobRun):
        job = run.job
        state = job.result
        plan = state["plan"]
        run.reporter.min_interval = 0
        lora = LoraModel.objects.get(pk=state["lora"])
        try:
            for index, item in enumerate(plan):
                if index in state["done"]:
                    continue
                if run.should_cancel():
                    raise JobCanceled()
                request = generation_create(user=job.user, params={
                    "prompt": item["prompt"], "model": state["model"], "seed": state["seed"],
                    "loras": [{"lora": lora.pk, "weight": item["weight"]}]}, enqueue=False)
                gen_job = generation_run(request_id=request.pk)
                if gen_job.status == Job.Status.SUCCEEDED:
                    for image in GenerationRequest.objects.get(pk=request.pk).images.all():
                        example = example_store_generated(lora=lora, image=image,
                                                          weight=item["weight"])
                        state["examples"].append(example.pk)
                else:
                    state["errors"].append(_plan_error(index, item, code=gen_job.error_code,
                                                       reason=gen_job.error_message))
                state["done"].append(index)
                run.save_result(state)
                run.step(len(state["done"]), len(plan),
                         f"{len(state['examples'])} example image(s)")
        except ApplicationError as exc:
            state["errors"].append({"item": "the job", "index": None, "code": exc.code,
                                    "reason": exc.message, "message": exc.message})
            run.save_result(state)
            raise
        if not state["examples"]:
            run.save_result(state)
            first = state["errors"][0] if state["errors"] else {}
            raise ApplicationError("generation_failed",
                                   first.get("message") or "No generation succeeded.")
        n = len(state["examples"])
        failed = len(state["errors"])
        tail = f", {failed} failed" if failed else ""  # listed in result.errors
        return state, f"{n} example image{'s' if n != 1 else ''}{tail}"

    job = Job.objects.get(pk=job_id)
    return job_run(job_id=job_id, work=work, total_steps=len(job.result.get("plan") or []),
                   message="Generating examples")
