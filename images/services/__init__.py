"""Generation: create a request + job, run it through the provider, store the images."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction

from core.exceptions import ApplicationError
from core.limits import pixels_check
from jobs.kernel import JobCanceled, JobRun, job_run
from jobs.models import Job
from jobs.services import job_create, job_enqueue, job_succeed
from loras.compat import loras_check
from loras.selectors import lora_prompt_name, lora_resolve
from providers import hires as hr
from providers import registry
from providers.base import (
    GeneratedImage,
    GenerationCancelled,
    GenerationSpec,
    HiresSpec,
    LoraSpec,
    ModelSpec,
    ProviderError,
)
from providers.samplers import SamplerError, sampler_check
from providers.selectors import profile_get
from providers.vae import vae_resolve

from ..infotext import infotext_for_request
from ..models import GenerationRequest, Image
from ..pngmeta import png_bytes, thumbnail_bytes
from ..prompt import (
    PromptSyntaxError,
    parse_prompt_attention,
    parse_prompt_loras,
    prompt_check_supported,
)
from ..tasks import generation_run as generation_run_task
from .embeddings import embedding_specs, embeddings_for_prompt

MAX_SEED = 2**32 - 1


def _resolve_loras(*, prompt: str, loras: list[dict], negative_prompt: str = "",
                   profile=None) -> tuple[str, list[dict]]:
    """Merge request LoRAs with ``<lora:...>`` tags of ``prompt``; resolve each in the library
    (file stem, ``ss_output_name`` alias, name, id or hash prefix: ``loras.selectors``); check
    the attention syntax of both prompts and, with ``profile``, that the LoRAs fit its model.

    Returns ``(prompt without LoRA tags, [{"lora_id", "name", "weight", "te_weight", "alias",
    "sha256", "short_hash"}])``; ``weight`` is the UNet weight, ``te_weight`` the text-encoder
    weight of ``<lora:NAME:TE:UNET>`` (None: same as ``weight``).

    Raises:
        ApplicationError: 400 ``invalid`` (prompt syntax, naming the tag), ``unknown_lora``,
            ``lora_incompatible`` (``loras.compat.loras_check``).
    """
    try:
        clean, tagged = parse_prompt_loras(prompt)
        parse_prompt_attention(clean)
        prompt_check_supported(clean)  # AND, prompt editing, alternation: refused, named
    except PromptSyntaxError as exc:
        raise ApplicationError("invalid", str(exc), fields={"prompt": [str(exc)]}) from None
    try:
        parse_prompt_attention(negative_prompt or "")
        prompt_check_supported(negative_prompt or "", negative=True)
    except PromptSyntaxError as exc:
        raise ApplicationError("invalid", str(exc),
                               fields={"negative_prompt": [str(exc)]}) from None
    wanted = [(str(item["lora"]), float(item.get("weight", 1.0)), item.get("te_weight"))
              for item in loras]
    wanted += [(t.name, t.weight, t.te_weight) for t in tagged]
    resolved: dict[int, dict] = {}
    found = {}
    for ref, weight, te_weight in wanted:
        lora = lora_resolve(ref=ref)
        if lora is None:
            raise ApplicationError("unknown_lora", f"No LoRA {ref!r} in the library.",
                                   fields={"loras": [f"Unknown LoRA {ref!r}."]})
        found[lora.pk] = lora
        resolved[lora.pk] = {"lora_id": lora.pk, "name": lora.name, "weight": weight,
                             "te_weight": None if te_weight is None else float(te_weight),
                             "alias": lora_prompt_name(lora, ref),
                             "sha256": lora.sha256, "short_hash": lora.short_hash}
    if profile is not None:
        loras_check(list(found.values()), profile)  # 400 lora_incompatible
    return clean, list(resolved.values())


def generation_validate(*, profile, width: int, height: int, n: int, loras: list) -> None:
    """Check a request against the profile's limits and its provider's capabilities.

    Raises:
        ApplicationError: 400 ``invalid`` naming the field, ``too_many_pixels`` (width x
            height x n over ``REQUEST_MAX_PIXELS``), or 503 ``provider_unavailable``.
    """
    try:
        provider = registry.get(profile.provider)
    except ProviderError as exc:
        raise ApplicationError(exc.code, exc.message, status=503) from None
    caps = provider.capabilities
    errors: dict[str, list[str]] = {}
    max_w, max_h = min(profile.max_width, caps.max_width), min(profile.max_height, caps.max_height)
    if width > max_w:
        errors["width"] = [f"Must be at most {max_w} pixels for model {profile.slug!r}."]
    if height > max_h:
        errors["height"] = [f"Must be at most {max_h} pixels for model {profile.slug!r}."]
    if n > caps.max_batch:
        errors["n"] = [f"Provider {profile.provider!r} makes at most {caps.max_batch} images."]
    if loras and not caps.loras:
        errors["loras"] = [f"Provider {profile.provider!r} cannot apply LoRAs."]
    if profile.pipeline_type not in provider.pipeline_types:
        errors["model"] = [f"Provider {profile.provider!r} has no pipeline type "
                           f"{profile.pipeline_type!r}."]
    elif profile.pipeline_type in provider.upscale_only_pipeline_types:
        errors["model"] = [f"Model {profile.slug!r} is an upscaler; use POST /api/upscale/."]
    if errors:
        field, messages = next(iter(errors.items()))
        raise ApplicationError("invalid", f"{field}: {messages[0]}", fields=errors)
    pixels_check(width * height * n, field="n")  # REQUEST_MAX_PIXELS: 400 too_many_pixels


def a1111_params(*, profile, params: dict, width: int, height: int, steps: int,
                 n: int) -> dict:
    """Check the A1111 fields of a generate body and return them as ``GenerationRequest``
    field values: ``sampler``/``scheduler`` (canonical labels of what will run, ``""`` for the
    model's own scheduler / Automatic), ``clip_skip`` (default: the profile option
    ``clip_skip``, else 1), ``vae`` (resolved path, ``""``: the model's), ``enable_hr`` and the
    ``hr_*`` fields (None without hires fix).

    Raises:
        ApplicationError: 400 ``invalid`` naming the field and the allowed values (unknown or
            unsupported sampler/schedule type/VAE/hires upscaler; a hires size over the
            profile's limits; a hires pass of no step), 400 ``too_many_pixels`` (the hires size
            x n over ``REQUEST_MAX_PIXELS``).
    """
    def invalid(field: str, message: str):
        return ApplicationError("invalid", f"{field}: {message}", fields={field: [message]})

    try:
        sampler, schedule = sampler_check(params.get("sampler") or "",
                                          params.get("scheduler") or "")
    except SamplerError as exc:
        raise invalid(exc.field, str(exc)) from None
    clip_skip = params.get("clip_skip") or (profile.options or {}).get("clip_skip") or 1
    if not 1 <= int(clip_skip) <= 12:
        raise invalid("clip_skip", f"Must be 1..12 (A1111 numbering), got {clip_skip}.")
    try:
        vae = vae_resolve(params.get("vae") or "")
    except ValueError as exc:
        raise invalid("vae", str(exc)) from None
    values = {"sampler": sampler, "scheduler": "" if schedule == "Automatic" else schedule,
              "clip_skip": int(clip_skip), "vae": vae, "enable_hr": bool(params.get("enable_hr")),
              "hr_scale": None, "hr_upscaler": "", "hr_second_pass_steps": None,
              "hr_denoising_strength": None}
    if not values["enable_hr"]:
        return values
    try:
        upscaler = hr.hires_upscaler(params.get("hr_upscaler") or "")
    except ValueError as exc:  # else an upscale model profile (A1111's ESRGAN-like choices)
        from .hires import hires_upscale_profile, hires_upscale_profiles

        found = hires_upscale_profile(str(params.get("hr_upscaler")).strip())
        if found is None:
            slugs = [p.slug for p in hires_upscale_profiles()]
            more = f" Upscale model profiles: {', '.join(slugs)}." if slugs else ""
            raise invalid("hr_upscaler", f"{exc}{more}") from None
        upscaler = found.slug
    scale = float(params.get("hr_scale") or 2.0)
    strength = params.get("denoising_strength")
    strength = 0.7 if strength is None else float(strength)
    second = int(params.get("hr_second_pass_steps") or 0)
    _, runs = hr.hires_steps(steps, second, strength)
    if runs < 1:
        raise invalid("denoising_strength", f"The hires pass would run no step "
                      f"({second or steps} steps x {strength}); raise one of them.")
    target_w, target_h = hr.hires_size(width, height, scale)
    provider = registry.get(profile.provider)
    max_w = min(profile.max_width, provider.capabilities.max_width)
    max_h = min(profile.max_height, provider.capabilities.max_height)
    if target_w > max_w or target_h > max_h:
        raise invalid("hr_scale", f"The hires size {target_w}x{target_h} is over "
                      f"{max_w}x{max_h} for model {profile.slug!r}.")
    pixels_check(target_w * target_h * n, field="hr_scale")
    values.update(hr_scale=scale, hr_upscaler=upscaler, hr_second_pass_steps=second,
                  hr_denoising_strength=strength)
    return values


def _same_a1111(existing: GenerationRequest, *, profile, params: dict) -> bool:
    try:
        wanted = a1111_params(profile=profile, params=params, width=existing.width,
                              height=existing.height, steps=existing.steps, n=existing.n)
    except ApplicationError:
        return False
    return all(getattr(existing, key) == value for key, value in wanted.items())


def _same_generation(existing: GenerationRequest, *, profile, params: dict) -> bool:
    """Whether ``params`` (a ``GenerateSerializer`` body) asks for what ``existing`` recorded:
    same prompt, model, LoRAs and every value the body sets (defaults and random seeds are not
    compared). Used for ``Idempotency-Key`` replays instead of storing a body hash."""
    if existing.profile_id != profile.pk or existing.prompt != params["prompt"]:
        return False
    if (params.get("n") or 1) != existing.n:
        return False
    for field in ("width", "height", "steps", "guidance_scale", "negative_prompt"):
        if params.get(field) is not None and params[field] != getattr(existing, field):
            return False
    if params.get("seed") is not None and params["seed"] >= 0 and params["seed"] != existing.seed:
        return False
    try:
        _, loras = _resolve_loras(prompt=params["prompt"], loras=params.get("loras") or [])
    except ApplicationError:
        return False
    as_set = lambda items: {(x["lora_id"], float(x["weight"]), x.get("te_weight"))  # noqa: E731
                            for x in items}
    if as_set(loras) != as_set(existing.loras):
        return False
    return _same_a1111(existing, profile=profile, params=params)


def _generation_replay(*, user, key: str, profile, params: dict) -> GenerationRequest | None:
    """The request ``user`` made earlier with Idempotency-Key ``key``, or None.

    Raises:
        ApplicationError: 409 ``idempotency_key_reused`` when the body differs.
    """
    existing = GenerationRequest.objects.select_related("job").filter(
        user=user, idempotency_key=key).first()
    if existing is not None and not _same_generation(existing, profile=profile, params=params):
        raise ApplicationError("idempotency_key_reused",
                               "This Idempotency-Key was used for a different request.",
                               status=409)
    if existing is not None and existing.job.status == Job.Status.FAILED:
        # A retry after a failure (503 broker_unavailable, a worker lost...) runs again: the
        # failed request gives up the key (it keeps its row, job and error) — only if no
        # concurrent retry took it first.
        GenerationRequest.objects.filter(pk=existing.pk, idempotency_key=key).update(
            idempotency_key="")
        return None
    return existing


def generation_create(*, user, params: dict, enqueue: bool = True,
                      idempotency_key: str = "") -> GenerationRequest:
    """Validate ``params`` (see ``GenerateSerializer``), create the request and its queued Job,
    and enqueue ``generation_run`` on the provider's queue after commit.

    Missing values come from the model profile's defaults; ``seed`` None or -1 picks a random
    seed now so it is recorded.

    ``idempotency_key`` (the ``Idempotency-Key`` header, at most 255 characters): a key this
    user sent before returns that first request unchanged (nothing new is created or queued),
    also when two such requests race (the unique constraint decides) — unless that request
    failed: then the retry is a new request that runs; the same key with a different body is
    409 ``idempotency_key_reused``.

    Raises:
        ApplicationError: 400 ``unknown_model`` / ``unknown_lora`` / ``invalid``, 503
            ``provider_unavailable`` / ``broker_unavailable``.
    """
    from .library import style_apply_params  # style template + defaults (#6)

    params = style_apply_params(user=user, params=params)
    profile = profile_get(slug=params.get("model"))
    if idempotency_key:
        replay = _generation_replay(user=user, key=idempotency_key, profile=profile,
                                    params=params)
        if replay is not None:
            return replay
    width = params.get("width") or profile.default_width
    height = params.get("height") or profile.default_height
    steps = params.get("steps") or profile.default_steps
    guidance = params.get("guidance_scale")
    guidance = profile.default_guidance_scale if guidance is None else guidance
    n = params.get("n") or 1
    seed = params.get("seed")
    if seed is None or seed < 0:
        seed = random.randint(0, MAX_SEED - n)
    negative = params.get("negative_prompt")
    negative = profile.default_negative_prompt if negative is None else negative
    clean, loras = _resolve_loras(prompt=params["prompt"], loras=params.get("loras") or [],
                                  negative_prompt=negative, profile=profile)
    if not clean:
        raise ApplicationError("invalid", "prompt: nothing left once LoRA tags are removed.",
                               fields={"prompt": ["The prompt has no text besides LoRA tags."]})
    generation_validate(profile=profile, width=width, height=height, n=n, loras=loras)
    embeddings = embeddings_for_prompt(clean, negative, profile)  # textual inversion: 400s
    a1111 = a1111_params(profile=profile, params=params, width=width, height=height,
                         steps=steps, n=n)
    total_steps = _hires_total(steps=steps, n=n, values=a1111)
    queue = registry.provider_queue(profile.provider)
    try:
        with transaction.atomic():
            job = job_create(kind="generate", user=user, total_steps=total_steps,
                             celery_task_id=str(uuid.uuid4()))
            request = GenerationRequest.objects.create(
                user=user, job=job, profile=profile, prompt=params["prompt"],
                clean_prompt=clean, negative_prompt=negative, width=width, height=height,
                steps=steps, guidance_scale=guidance, seed=seed, n=n, loras=loras,
                embeddings=embeddings, idempotency_key=idempotency_key,
                style=params.get("style_obj"), **a1111,
            )
            if enqueue:  # recorded with the job, published at the commit (503: broker down)
                job_enqueue(job=job, task=generation_run_task, args=[request.pk], queue=queue)
    except IntegrityError:
        # A concurrent request with the same key won the unique constraint: answer with it.
        replay = idempotency_key and _generation_replay(
            user=user, key=idempotency_key, profile=profile, params=params)
        if not replay:
            raise
        return replay
    return request


def _spec_for(request: GenerationRequest) -> GenerationSpec:
    from loras.models import LoraModel

    found = {lora.pk: lora for lora in LoraModel.objects.filter(
        pk__in=[x["lora_id"] for x in request.loras], status=LoraModel.Status.PRESENT,
    ).select_related("root")}
    paths = {pk: lora.abs_path for pk, lora in found.items()}
    loras = []
    for item in request.loras:
        if item["lora_id"] not in paths:
            raise ProviderError("unknown_lora", f"LoRA {item['name']!r} left the library.")
        loras.append(LoraSpec(path=paths[item["lora_id"]], sha256=item["sha256"],
                              name=item["name"], weight=item["weight"],
                              te_weight=item.get("te_weight"),
                              alias=item.get("alias") or item["name"],
                              civitai_model_id=found[item["lora_id"]].civitai_model_id,
                              civitai_version_id=found[item["lora_id"]].civitai_version_id))
    profile = request.profile
    return GenerationSpec(
        model=ModelSpec(pipeline_type=profile.pipeline_type, model=profile.model_path,
                        name=profile.name, options=profile.options),
        prompt=request.clean_prompt, negative_prompt=request.negative_prompt,
        width=request.width, height=request.height, steps=request.steps,
        guidance_scale=request.guidance_scale, seed=request.seed, n=request.n,
        loras=tuple(loras), sampler=request.sampler, scheduler=request.scheduler,
        clip_skip=request.clip_skip or 1, vae=request.vae, hires=_hires_spec(request),
        embeddings=embedding_specs(request.embeddings),
    )


def _hires_spec(request: GenerationRequest) -> HiresSpec | None:
    """The hires fix a txt2img request asked for, or None."""
    if not request.enable_hr or request.kind != "txt2img":
        return None
    return HiresSpec(scale=request.hr_scale or 2.0, upscaler=request.hr_upscaler or "Latent",
                     steps=request.hr_second_pass_steps or 0,
                     denoising_strength=request.hr_denoising_strength
                     if request.hr_denoising_strength is not None else 0.7)


def request_steps(request: GenerationRequest) -> int:
    """The steps a run reports progress over: edits' ``int(steps x strength)``
    (``images.services.edit.request_total_steps``) and, with hires fix, the first pass's
    steps plus the second pass's ``int(steps x denoising strength)``."""
    from .edit import request_total_steps

    if _hires_spec(request) is None:
        return request_total_steps(request)
    return _hires_total(steps=request.steps, n=request.n, values={
        f: getattr(request, f) for f in ("enable_hr", "hr_upscaler", "hr_second_pass_steps",
                                         "hr_denoising_strength")})


def _hires_total(*, steps: int, n: int, values: dict) -> int:
    """Progress steps of a txt2img run with the hires fields ``values`` (``a1111_params``)."""
    if not values["enable_hr"]:
        return steps
    second, strength = values["hr_second_pass_steps"] or 0, values["hr_denoising_strength"]
    if values["hr_upscaler"] not in hr.HIRES_UPSCALERS:  # an upscale model profile
        from .hires import hires_total_steps

        return hires_total_steps(steps=steps, n=n, hires_steps=second, strength=strength)
    return steps + hr.hires_steps(steps, second, strength)[1]


def _image_store(*, request: GenerationRequest, out: GeneratedImage) -> Image:
    """Write one PNG (with parameters) and its thumbnail, and create the Image row."""
    profile = request.profile
    sampler = out.info.get("sampler") or request.sampler
    scheduler = out.info.get("scheduler") or request.scheduler
    # A1111's create_infotext fields and order; edits/upscales/hires add theirs (images/infotext)
    parameters = infotext_for_request(request, out.info, seed=out.seed, width=out.image.width,
                                      height=out.image.height)
    stem = uuid.uuid4().hex
    image = Image(
        user=request.user, request=request, width=out.image.width, height=out.image.height,
        seed=out.seed, steps=request.steps,
        guidance_scale=request.guidance_scale, sampler=sampler, scheduler=scheduler,
        prompt=request.prompt,
        negative_prompt=request.negative_prompt, provider=profile.provider,
        model_name=profile.name, loras=request.loras, parameters=parameters,
        source_id=request.source_image_id, kind=request.kind,
    )
    image.file.save(f"{stem}.png", ContentFile(png_bytes(out.image, parameters=parameters)),
                     save=False)
    try:
        image.thumbnail.save(f"{stem}.webp", ContentFile(
            thumbnail_bytes(out.image, size=settings.THUMBNAIL_SIZE)), save=False)
        image.save()
    except BaseException:  # no orphan PNG when the thumbnail or the row fails
        image.file.delete(save=False)
        if image.thumbnail:
            image.thumbnail.delete(save=False)
        raise
    return image


def image_payload(image: Image) -> dict:
    """The JSON an API client gets for an image (URLs relative to the site)."""
    return {"id": image.pk, "url": image.file.url,
            "thumbnail_url": image.thumbnail.url if image.thumbnail else None,
            "width": image.width, "height": image.height, "seed": image.seed,
            "detail_url": f"/images/{image.pk}/"}


def generation_run(*, request_id: int,
                   listener: Callable[[int, int], None] | None = None) -> Job:
    """Run a queued generation through the job kernel (``jobs.kernel.job_run``): provider
    call, files, rows, hooks, job status.

    Failures never raise: they end the job as failed (``ProviderError`` code and message,
    ``storage_error`` for a disk that refuses the files, or ``internal_error``) or canceled;
    files written before a failure are removed. A re-delivered task of a finished or running
    job does nothing.
    """
    request = GenerationRequest.objects.select_related("job", "profile", "user").get(
        pk=request_id)
    stored: list[Image] = []

    def work(run: JobRun):
        started = time.monotonic()
        spec = _spec_for(request)
        try:
            if request.kind == "txt2img" and spec.hires is not None and \
                    spec.hires.upscaler not in hr.HIRES_UPSCALERS:
                from .hires import hires_with_profile  # an upscale profile as hires upscaler

                outputs = hires_with_profile(request=request, spec=spec, sink=run.reporter)
            elif request.kind == "txt2img":
                outputs = registry.get(request.profile.provider).generate(spec, run.reporter)
            else:  # img2img, inpaint, upscale (#5)
                from .edit import edit_outputs

                outputs = edit_outputs(request=request, spec=spec, sink=run.reporter)
        except GenerationCancelled as exc:
            raise JobCanceled() from exc
        generate_seconds = time.monotonic() - started
        with transaction.atomic():  # images, hooks and success commit together, or not at all
            for out in outputs:  # one by one, so a failure can remove the files already written
                stored.append(_image_store(request=request, out=out))
            from ..hooks import post_generation_hooks_run  # tags, usage log, webhook (#6)

            hook_errors = post_generation_hooks_run(request=request, images=stored, job=run.job,
                                                    started=started)
            return job_succeed(job=run.job, result={
                "request": request.pk, "images": [image_payload(i) for i in stored],
                "hook_errors": hook_errors,
                "timings": {"generate_seconds": round(generate_seconds, 4),
                            "total_seconds": round(time.monotonic() - started, 4)}},
                message=f"{len(stored)} image{'s' if len(stored) != 1 else ''}")

    def remove_files():
        for image in stored:
            image.file.delete(save=False)
            image.thumbnail.delete(save=False)

    return job_run(job_id=request.job_id, work=work, total_steps=request_steps(request),
                   message="Generating", listener=listener, on_failure=remove_files,
                   errors={OSError: _storage_error})


def _storage_error(exc: BaseException) -> tuple[str, str]:
    """Disk full, permission denied (reliability #7): say so."""
    return ("storage_error",
            f"Could not write the image files: {getattr(exc, 'strerror', None) or exc}. "
            "Nothing was kept.")
