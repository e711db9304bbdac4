"""Civitai metadata for library LoRAs: refresh one (sync) or all (a resumable Job).

Facts (docs/protocols.md#civitai-model-versions, docs/protocols.md#model-hashes):
- A file is looked up by SHA256 first, then by AutoV3 (the tensor-data hash): metadata edits
  change SHA256 but not AutoV3, so a local file may match only by AutoV3. The API docs show
  AutoV3 as 12 hex and whether ``by-hash`` also takes the 64-hex form is UNVERIFIED, so both
  are tried (12 first); each miss is remembered by the client's not-found cache.
- Version fields: ``modelId``, ``id``, ``baseModel`` (free string: "SD 1.5", "SDXL 1.0",
  "Pony", "Illustrious", "Flux.1 D"...), ``trainedWords``, ``nsfwLevel`` (bitmask PG=1, PG13=2,
  R=4, X=8, XXX=16), ``images[]`` (``url``, ``nsfwLevel`` int, ``type``).
- Model fields: ``tags``, ``creator.username``, license flags ``allowNoCredit``,
  ``allowCommercialUse``, ``allowDerivatives``, ``allowDifferentLicense``.

A rate limit or an outage never changes a LoRA: every field is written at the end, in one
save, after all Civitai calls succeeded.
"""

from __future__ import annotations

import logging
import os

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.exceptions import ApplicationError
from jobs.kernel import JobCanceled, JobRun, job_run
from jobs.models import Job
from jobs.services import job_create_exclusive

from ..civitai import (
    CivitaiClient,
    CivitaiError,
    CivitaiNotFound,
    CivitaiRateLimited,
    CivitaiUnavailable,
)
from ..files import temp_file
from ..metadata import trigger_words_from_metadata
from ..models import LoraModel
from ..outbound import outbound_get
from ..paths import is_outside_root, relative_to_root
from ..sidecars import preview_path, stem_of
from ..tasks_civitai import civitai_refresh_all_run as civitai_refresh_all_run_task
from ..triggers import removed_words, trigger_words_add_declared

log = logging.getLogger(__name__)
REFRESH_ALL_KIND = "civitai_refresh"
LICENSE_KEYS = ("allowNoCredit", "allowCommercialUse", "allowDerivatives",
                "allowDifferentLicense")
IMAGE_EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}
VIDEO_EXTENSIONS = {"video/mp4": ".mp4", "video/webm": ".webm"}


def _preview_max_bytes() -> int:
    return int(getattr(settings, "CIVITAI_PREVIEW_MAX_BYTES", 20 * 1024 * 1024))


def place_new_file(*, src: str, dst: str) -> None:
    """Move the finished temporary file ``src`` to ``dst`` (same filesystem), never
    overwriting: a hard link (atomic, fails if ``dst`` exists) then unlink; on filesystems
    without hard links, a rename after an existence check.

    Raises:
        FileExistsError: ``dst`` exists (``src`` is left in place).
    """
    try:
        os.link(src, dst)
    except FileExistsError:
        raise
    except OSError:
        if os.path.lexists(dst):
            raise FileExistsError(dst) from None
        os.rename(src, dst)
        return
    os.unlink(src)


def civitai_lookup(*, client: CivitaiClient, sha256: str, autov3: str) -> dict:
    """The model version of a file: by SHA256, then AutoV3 (12 hex, then 64 hex).

    Raises:
        CivitaiNotFound: no hash matched. CivitaiRateLimited / CivitaiUnavailable: propagated
            at once (never read as "not found").
        ApplicationError: 400 ``lora_not_hashed`` when both hashes are empty.
    """
    candidates = [h for h in (sha256, autov3[:12], autov3) if h]
    if not candidates:
        raise ApplicationError("lora_not_hashed", "This LoRA has no hash yet; scan it first.")
    for candidate in dict.fromkeys(candidates):
        try:
            return client.version_by_hash(candidate)
        except CivitaiNotFound:
            continue
    raise CivitaiNotFound("Civitai knows no model version with this file's SHA256 or AutoV3.")


def civitai_fields(*, version: dict, model: dict | None, lora: LoraModel | None = None) -> dict:
    """LoraModel field values from a Civitai ``version`` and its ``model`` (either may lack
    keys). Tags are merged into the LoRA's own tags (user tags are kept); trigger words are
    merged into the LoRA's own (``loras.triggers``: none is dropped, none the user removed
    comes back); the base model is replaced by a non-empty Civitai value unless the user set
    it (``user_overrides``)."""
    model = model or {}
    merged = dict(version)
    merged["model"] = {**(version.get("model") or {}),
                       **{k: model[k] for k in ("name", "type", "nsfw", "poi", "tags", "creator")
                          if k in model}}
    fields: dict = {
        "civitai": merged,
        "civitai_model_id": version.get("modelId"),
        "civitai_version_id": version.get("id"),
        "last_checked_at": timezone.now(),
    }
    words = [w for w in version.get("trainedWords") or [] if isinstance(w, str)]
    if words:
        fields["trigger_words"] = trigger_words_add_declared(
            lora.trigger_words if lora is not None else [], words,
            guess=trigger_words_from_metadata(lora.header_metadata or {}) if lora else (),
            removed=removed_words(lora) if lora is not None else ())
    user_base = lora is not None and (lora.user_overrides or {}).get("base_model")
    if version.get("baseModel") and not user_base:
        fields["base_model"] = str(version["baseModel"])[:50]
    if isinstance(version.get("nsfwLevel"), int):
        fields["nsfw_level"] = max(0, min(version["nsfwLevel"], 32767))
    tags = [str(t) for t in (model.get("tags") or []) if t]
    if tags:
        existing = list(lora.tags) if lora is not None else []
        fields["tags"] = list(dict.fromkeys([*existing, *tags]))
    license_flags = {k: model[k] for k in LICENSE_KEYS if k in model}
    if license_flags:
        fields["license_flags"] = license_flags
    return fields


def _pick_preview(version: dict) -> dict | None:
    """The first still image of ``version`` within ``CIVITAI_PREVIEW_MAX_NSFW_LEVEL`` (0 = any),
    else the first such video (``type: "video"``; saved as ``.mp4``/``.webm``)."""
    max_level = int(getattr(settings, "CIVITAI_PREVIEW_MAX_NSFW_LEVEL", 0))
    allowed = []
    for image in version.get("images") or []:
        if not image.get("url") or image.get("type", "image") not in ("image", "video"):
            continue
        level = image.get("nsfwLevel")
        if max_level and isinstance(level, int) and level > max_level:
            continue
        allowed.append(image)
    return (next((i for i in allowed if i.get("type", "image") == "image"), None)
            or next(iter(allowed), None))


def lora_preview_fetch(*, lora: LoraModel, version: dict, client: CivitaiClient) -> str | None:
    """Download the first allowed image of ``version`` next to the LoRA as
    ``<stem>.preview.<ext>``, only when the LoRA has no preview file yet.

    Written to a temporary file in the same folder (mode 0666 & ~umask, ``loras.files``),
    fsynced, checked with Pillow (a video by its content type) and linked into place (never
    overwriting). Returns the preview path relative to the root, or None
    (no image, not an image, too big, or any fetch error: a preview never fails a refresh).
    """
    file_path = lora.abs_path
    if preview_path(file_path) or is_outside_root(lora.root.path, file_path):
        return None  # a file outside its root is never written next to (loras.paths)
    image = _pick_preview(version)
    if image is None:
        return None
    from PIL import Image

    tmp = None
    try:
        response = outbound_get(client.session, image["url"], timeout=client.timeout)
        with response:
            ctype = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            ext = IMAGE_EXTENSIONS.get(ctype) or VIDEO_EXTENSIONS.get(ctype)
            if response.status_code != 200 or ext is None:
                return None
            limit = _preview_max_bytes()
            fd, tmp = temp_file(os.path.dirname(file_path), prefix=".preview-")
            size = 0
            with os.fdopen(fd, "wb") as out:
                for chunk in response.iter_content(64 * 1024):
                    size += len(chunk)
                    if size > limit:
                        return None
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
        if ext in IMAGE_EXTENSIONS.values():
            with Image.open(tmp) as img:
                img.verify()
        target = stem_of(file_path) + ".preview" + ext
        place_new_file(src=tmp, dst=target)  # fails if a preview appeared: never overwrite
        return relative_to_root(lora.root.path, target)
    except Exception as exc:  # noqa: BLE001 - a preview never fails a refresh
        log.info("preview for LoRA %s not fetched: %s", lora.pk, exc)
        return None
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)


def lora_civitai_apply(*, lora: LoraModel, version: dict, model: dict | None,
                       client: CivitaiClient | None = None, fetch_preview: bool = True
                       ) -> LoraModel:
    """Write Civitai ``version``/``model`` metadata (and the preview) onto ``lora``, then its
    sidecars (``<stem>.civitai.info`` = ``version`` as fetched, A1111 ``<stem>.json``;
    ``loras.services.sidecars``, when ``WRITE_SIDECARS``)."""
    from .sidecars import sidecars_write

    fields = civitai_fields(version=version, model=model, lora=lora)
    if fetch_preview:
        client = client or CivitaiClient()
        preview = lora_preview_fetch(lora=lora, version=version, client=client)
        if preview:
            fields["preview"] = preview
    with transaction.atomic():
        for name, value in fields.items():
            setattr(lora, name, value)
        lora.save(update_fields=[*fields, "updated_at"])
    sidecars_write(lora=lora, version=version)
    return lora


def lora_civitai_refresh(*, lora: LoraModel, client: CivitaiClient | None = None
                         ) -> LoraModel:
    """Look ``lora`` up on Civitai (SHA256, then AutoV3), fetch its model, and fill civitai
    JSON and ids, trigger words, base model, NSFW level, tags, license flags,
    ``last_checked_at``, a preview when it has none, and the update state from the model
    (``loras.services.updates``).

    Raises:
        CivitaiNotFound (404 ``civitai_not_found``; only ``last_checked_at`` is written),
        CivitaiRateLimited (429), CivitaiUnavailable (503): nothing is written.
        ApplicationError: 400 ``lora_not_hashed``.
    """
    client = client or CivitaiClient()
    try:
        version = civitai_lookup(client=client, sha256=lora.sha256, autov3=lora.autov3)
    except CivitaiNotFound:
        lora.last_checked_at = timezone.now()
        lora.save(update_fields=["last_checked_at", "updated_at"])
        raise
    model = None
    if version.get("modelId"):
        try:
            model = client.model_get(version["modelId"])
        except CivitaiNotFound:
            model = None  # the version is public, its model page may not be
    lora = lora_civitai_apply(lora=lora, version=version, model=model, client=client)
    if model is not None:  # the model is at hand: its update state costs no call
        from .updates import lora_update_state_apply

        lora = lora_update_state_apply(lora=lora, model=model)
    return lora


# -- refresh all: a resumable job -------------------------------------------------------
def civitai_refresh_all_create(*, user, only_missing: bool = True,
                               lora_ids: list[int] | None = None, enqueue: bool = True) -> Job:
    """Create a queued ``civitai_refresh`` Job and enqueue it on the ``io`` queue.

    ``job.result`` holds ``{"options": {only_missing, lora_ids}, "cursor": last LoRA id done,
    "updated", "not_found", "failed"}``; the run continues after ``cursor``.

    Raises:
        ApplicationError: 409 ``job_running`` when a refresh-all job is queued or running.
    """
    job = job_create_exclusive(
        kind=REFRESH_ALL_KIND, user=user, what="A Civitai refresh of the library",
        result={"options": {"only_missing": bool(only_missing),
                            "lora_ids": list(lora_ids) if lora_ids else None},
                "cursor": 0, "updated": 0, "not_found": 0, "failed": 0},
        task=civitai_refresh_all_run_task if enqueue else None, queue="io")
    return job


def _refresh_queryset(options: dict):
    qs = LoraModel.objects.filter(status=LoraModel.Status.PRESENT).select_related("root")
    if options.get("lora_ids"):
        qs = qs.filter(pk__in=options["lora_ids"])
    if options.get("only_missing", True):
        qs = qs.filter(civitai_version_id__isnull=True)
    return qs.order_by("pk")


def civitai_refresh_all_run(*, job_id: str, client: CivitaiClient | None = None) -> Job:
    """Refresh LoRAs in id order after ``job.result["cursor"]``, saving the cursor after each
    one, so a re-delivered or restarted task continues where the last one stopped.

    Cancel is checked between LoRAs. A rate limit or outage that outlasts the client's
    retries fails the job (``civitai_rate_limited`` / ``civitai_unavailable``) with the cursor
    kept; not-found LoRAs are counted, never changed beyond ``last_checked_at``.
    """
    progress = {"done": 0, "total": 0}

    def work(run: JobRun):
        state = dict(run.job.result or {})
        options = state.get("options") or {}
        cursor = int(state.get("cursor") or 0)
        qs = _refresh_queryset(options)
        total = progress["total"] = qs.count()
        done = progress["done"] = qs.filter(pk__lte=cursor).count()
        run.step(done, total, f"{done}/{total} LoRAs")
        own = client or CivitaiClient()
        try:
            for lora in qs.filter(pk__gt=cursor).iterator(chunk_size=200):
                if run.should_cancel():
                    raise JobCanceled()
                try:
                    lora_civitai_refresh(lora=lora, client=own)
                    state["updated"] = state.get("updated", 0) + 1
                except CivitaiNotFound:
                    state["not_found"] = state.get("not_found", 0) + 1
                except (CivitaiRateLimited, CivitaiUnavailable):
                    raise
                except (ApplicationError, OSError) as exc:
                    state["failed"] = state.get("failed", 0) + 1
                    log.info("civitai refresh of LoRA %s failed: %s", lora.pk, exc)
                done = progress["done"] = done + 1
                state["cursor"] = lora.pk
                run.save_result(state)
                run.step(done, total, f"{done}/{total} LoRAs: {lora.name}")
        finally:
            if client is None:
                own.close()
        return state, (f"{state.get('updated', 0)} updated, "
                       f"{state.get('not_found', 0)} not on Civitai")

    def civitai_error(exc) -> tuple[str, str]:
        return exc.code, (f"{exc.message} Resume later: {progress['done']}/"
                          f"{progress['total']} LoRAs done.")

    return job_run(job_id=job_id, work=work, message="Refreshing from Civitai",
                   errors={CivitaiError: civitai_error})
