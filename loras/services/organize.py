"""Auto-organize: move LoRAs into folders named by a template, as a planned dry run or a Job.

Template placeholders (``settings.LORA_ORGANIZE_TEMPLATE``, default
``{base_model}/{first_tag}``):

- ``{base_model}`` — the LoRA's base model ("unknown" when empty);
- ``{first_tag}`` — its first tag ("unknown" without tags);
- ``{author}`` — the Civitai creator's username from the stored Civitai JSON
  (``creator.username`` or ``model.creator.username``), else "unknown".

Each value is sanitized into one safe folder name (no separators, no leading dots, no control
or reserved characters, at most 64 characters). Only present, non-excluded LoRAs move.
"""

from __future__ import annotations

import re
import string

from django.conf import settings

from core.exceptions import ApplicationError
from jobs.kernel import JobCanceled, JobRun, job_run
from jobs.models import Job
from jobs.services import job_create_exclusive

from ..models import LoraModel
from ..paths import normalize_relative
from ..tasks_library import lora_organize_run as lora_organize_run_task
from .library import lora_files_guard, lora_move

PLACEHOLDERS = ("base_model", "first_tag", "author")
JOB_KIND = "lora_organize"
_UNSAFE = re.compile(r'[\x00-\x1f<>:"/\\|?*]+')


def folder_name_sanitize(value: str, *, default: str = "unknown") -> str:
    """``value`` as one safe folder name (reserved characters -> '_', trimmed, ≤ 64 chars;
    ``default`` when nothing alphanumeric is left)."""
    name = _UNSAFE.sub("_", str(value or "")).strip().strip(".").strip()
    name = re.sub(r"\s+", " ", name)[:64].strip()
    return name if any(c.isalnum() for c in name) else default


def _author(lora: LoraModel) -> str:
    data = lora.civitai if isinstance(lora.civitai, dict) else {}
    for holder in (data, data.get("model") or {}):
        creator = holder.get("creator") if isinstance(holder, dict) else None
        if isinstance(creator, dict) and creator.get("username"):
            return str(creator["username"])
    return ""


def organize_template_validate(template: str | None) -> str:
    """The template to use (default ``LORA_ORGANIZE_TEMPLATE``).

    Raises:
        ApplicationError: 400 ``invalid_template`` (unknown placeholder, format spec,
            or a path that leaves the root).
    """
    template = template or settings.LORA_ORGANIZE_TEMPLATE
    try:
        fields = [f for _, f, spec, conv in string.Formatter().parse(template) if f is not None]
        bad = [f for f in fields if f not in PLACEHOLDERS]
        specs = [spec or conv for _, f, spec, conv in string.Formatter().parse(template)
                 if f is not None and (spec or conv)]
    except ValueError as exc:
        raise ApplicationError("invalid_template", f"Bad template: {exc}.",
                               fields={"template": [str(exc)]}) from None
    if bad or specs:
        raise ApplicationError("invalid_template", "Placeholders are {base_model}, {first_tag} "
                               "and {author}.", fields={"template": ["Unknown placeholder."]})
    try:
        normalize_relative(template.replace("{", "").replace("}", ""))
    except ApplicationError as exc:
        raise ApplicationError("invalid_template", exc.message,
                               fields={"template": [exc.message]}) from None
    return template


def organize_folder(*, lora: LoraModel, template: str) -> str:
    """The folder (relative to the LoRA's root) ``template`` gives for ``lora``."""
    values = {
        "base_model": folder_name_sanitize(lora.base_model),
        "first_tag": folder_name_sanitize(lora.tags[0] if lora.tags else ""),
        "author": folder_name_sanitize(_author(lora)),
    }
    return normalize_relative(template.format_map(values))


def organize_plan(*, template: str | None = None) -> dict:
    """The moves auto-organize would make, changing nothing.

    Returns:
        ``{"template", "moves": [{id, from, to}], "conflicts": [{id, from, to, code,
        message}]}`` with paths relative to each LoRA's root. A conflict is a LoRA whose file
        or a sidecar leaves its root (``outside_root``, see
        :func:`loras.services.library.lora_files_guard`), a target already on disk or in the
        DB, or two LoRAs planned to the same target.
    """
    import os

    from ..paths import resolve_in_root
    from ..sidecars import SIDECAR_SUFFIXES

    template = organize_template_validate(template)
    moves, conflicts, claimed = [], [], set()
    live = {(r, p) for r, p in LoraModel.objects.exclude(status=LoraModel.Status.TRASHED)
            .values_list("root_id", "relative_path")}
    qs = (LoraModel.objects.filter(status=LoraModel.Status.PRESENT, excluded=False)
          .select_related("root").order_by("root_id", "relative_path"))
    for lora in qs.iterator(chunk_size=2000):
        folder = organize_folder(lora=lora, template=template)
        if folder == lora.folder:
            continue
        target = f"{folder}/{lora.file_name}" if folder else lora.file_name
        item = {"id": lora.pk, "from": lora.relative_path, "to": target}
        key = (lora.root_id, target)
        code = None
        try:
            lora_files_guard(lora=lora, known_only=True)  # the move checks every sidecar
        except ApplicationError as exc:
            code, message = exc.code, exc.message
        if code:
            pass
        elif key in claimed:
            code, message = "duplicate_target", "Another LoRA is planned to the same path."
        elif key in live:
            code, message = "path_taken", "Another LoRA is registered at the target."
        else:
            try:
                stem = os.path.splitext(resolve_in_root(lora.root.path, target))[0]
                ext = os.path.splitext(target)[1]
                if any(os.path.lexists(stem + s) for s in (ext, *SIDECAR_SUFFIXES)):
                    code, message = "path_taken", "A file already exists at the target."
            except ApplicationError as exc:
                code, message = exc.code, exc.message
        if code:
            conflicts.append({**item, "code": code, "message": message})
        else:
            claimed.add(key)
            moves.append(item)
    return {"template": template, "moves": moves, "conflicts": conflicts}


def organize_start(*, user, template: str | None = None, enqueue: bool = True) -> Job:
    """Create a ``lora_organize`` Job and enqueue its task on the ``io`` queue after commit.

    Raises:
        ApplicationError: 400 ``invalid_template``; 409 ``job_running`` while another
            organize job is queued or running.
    """
    template = organize_template_validate(template)
    return job_create_exclusive(kind=JOB_KIND, user=user, what="Auto-organize",
                                message="Planning moves.",
                                task=lora_organize_run_task if enqueue else None, queue="io",
                                extra_args=(template,))


def organize_run(*, job_id: str, template: str) -> Job:
    """Run auto-organize for ``job_id`` through the job kernel: plan, then move each LoRA
    (file + sidecars) with :func:`loras.services.library.lora_move`, reporting progress; a
    failing move is reported and the run goes on. An unexpected error fails the job
    ``organize_failed``.

    ``job.result``: ``{"template", "moved": [{id, from, to}], "conflicts": [...],
    "failed": [{id, from, to, code, message}]}``.
    """

    def work(run: JobRun):
        plan = organize_plan(template=template)
        total = len(plan["moves"])
        run.step(0, total, f"Moving {total} LoRAs.")
        moved, failed = [], []

        def result():
            return {"template": plan["template"], "moved": moved,
                    "conflicts": plan["conflicts"], "failed": failed}

        loras = LoraModel.objects.select_related("root").in_bulk(
            [m["id"] for m in plan["moves"]])
        for i, item in enumerate(plan["moves"], start=1):
            if run.should_cancel():
                raise JobCanceled(f"Canceled after {len(moved)} moves.", result=result())
            lora = loras.get(item["id"])
            try:
                if lora is None or lora.status != LoraModel.Status.PRESENT:
                    raise ApplicationError("not_present", "The LoRA is no longer present.")
                lora_move(lora=lora, folder=item["to"].rpartition("/")[0])
                moved.append(item)
            except ApplicationError as exc:
                failed.append({**item, "code": exc.code, "message": exc.message})
            run.step(i, total, f"{i}/{total}: {item['to']}")
        return result(), (f"Moved {len(moved)}; "
                          f"{len(plan['conflicts']) + len(failed)} left in place.")

    return job_run(job_id=job_id, work=work, message="Planning moves.",
                   fail_code="organize_failed")
