"""Civitai update check, ignore, one-click download of a newer version, and manual relink
(docs/library.md#civitai-update-check).

Facts (docs/protocols.md#civitai): ``GET /api/v1/models/{id}`` returns the model with
``modelVersions``, newest first, each with ``id``, ``name``, ``baseModel``, ``publishedAt`` /
``createdAt`` and ``status``. A multi-model request exists on ``GET /api/v1/models`` (``ids``)
but its paging and fields are not verified here, so the check asks once per distinct model id
(every LoRA of that model shares the answer), each call paced by the process-wide Civitai
limiter and retried under the one retry policy (``loras.civitai``).

A version is an **update** of a LoRA when it is newer than the LoRA's own version (earlier in
``modelVersions``; by ``publishedAt`` when the own version is no longer listed), has the same
base model (case-insensitive; the own version's ``baseModel`` from the stored Civitai JSON,
else the LoRA's), is not ignored (``update_ignored_versions``) and the model is not ignored
(``update_ignore_model``).
"""

from __future__ import annotations

import logging
import re

from django.db.models import QuerySet
from django.utils import timezone

from core.exceptions import ApplicationError
from jobs.kernel import JobCanceled, JobRun, job_run
from jobs.models import Job
from jobs.services import job_create_exclusive

from ..civitai import CivitaiClient, CivitaiError, CivitaiNotFound, sync_client
from ..models import Download, LoraModel
from ..tasks_updates import lora_update_check_run as update_check_task

log = logging.getLogger(__name__)
UPDATE_CHECK_KIND = "lora_update_check"
BATCH = 50  # model ids per progress save (the cursor a re-delivered task continues from)


def _base(value) -> str:
    return str(value or "").strip().lower()


def _when(version: dict) -> str:
    return str(version.get("publishedAt") or version.get("createdAt") or "")


def newer_version(*, lora: LoraModel, model: dict) -> dict | None:
    """The newest version of ``model`` (a ``GET /models/{id}`` answer) that is an update of
    ``lora`` (module doc), or None."""
    if lora.update_ignore_model:
        return None
    versions = [v for v in model.get("modelVersions") or [] if isinstance(v, dict)
                and isinstance(v.get("id"), int)]
    versions = [v for v in versions if v.get("status", "Published") == "Published"]
    own_id = lora.civitai_version_id
    own = lora.civitai if isinstance(lora.civitai, dict) else {}
    base = _base(own.get("baseModel") or lora.base_model)
    ids = [v["id"] for v in versions]
    if own_id in ids:
        newer = versions[:ids.index(own_id)]
    else:
        since = _when(own)
        newer = [v for v in versions if since and _when(v) > since]
    ignored = {int(v) for v in lora.update_ignored_versions or [] if isinstance(v, int)}
    for version in newer:  # newest first
        if version["id"] in ignored or version["id"] == own_id:
            continue
        if base and _base(version.get("baseModel")) != base:
            continue
        return version
    return None


def lora_update_state_apply(*, lora: LoraModel, model: dict | None) -> LoraModel:
    """Store the update state of ``lora`` from ``model`` (None: the model is gone, no update)."""
    version = newer_version(lora=lora, model=model) if model else None
    now = timezone.now()
    lora.update_available = version is not None
    lora.civitai_update = {} if version is None else {
        "version_id": version["id"], "name": str(version.get("name") or ""),
        "base_model": str(version.get("baseModel") or ""), "published_at": _when(version),
        "checked_at": now.isoformat()}
    lora.update_checked_at = now
    lora.save(update_fields=["update_available", "civitai_update", "update_checked_at",
                             "updated_at"])
    return lora


def _checkable() -> QuerySet[LoraModel]:
    return LoraModel.objects.filter(status=LoraModel.Status.PRESENT,
                                    civitai_model_id__isnull=False)


def update_check(*, client: CivitaiClient, after_model: int = 0, run: JobRun | None = None,
                 state: dict | None = None) -> dict:
    """Check every present LoRA with a Civitai model id, one ``GET /models/{id}`` per distinct
    model id in id order after ``after_model``.

    Returns (and keeps in ``state``) ``{"cursor": last model id done, "models", "checked",
    "flagged", "not_found"}``; ``flagged`` counts the LoRAs flagged in this run.

    Raises:
        CivitaiRateLimited / CivitaiUnavailable: after the client's retries (the cursor in
            ``state`` says where to continue). JobCanceled: ``run`` asked to stop.
    """
    state = state if state is not None else {}
    for key in ("models", "checked", "flagged", "not_found"):
        state.setdefault(key, 0)
    model_ids = sorted(set(_checkable().filter(civitai_model_id__gt=after_model)
                           .values_list("civitai_model_id", flat=True)))
    total = len(model_ids) + state["models"]
    for n, model_id in enumerate(model_ids, start=1):
        if run is not None and run.should_cancel():
            raise JobCanceled("Update check canceled.", result=state)
        try:
            model = client.model_get(model_id)
        except CivitaiNotFound:
            model = None
            state["not_found"] += 1
        for lora in _checkable().filter(civitai_model_id=model_id):
            lora_update_state_apply(lora=lora, model=model)
            state["checked"] += 1
            state["flagged"] += int(lora.update_available)
        state["models"] += 1
        state["cursor"] = model_id
        if run is not None:
            if n % BATCH == 0 or n == len(model_ids):
                run.save_result(state)
            run.step(state["models"], total, f"{state['models']}/{total} models")
    return state


def update_check_start(*, user=None, enqueue: bool = True) -> Job:
    """Queue a ``lora_update_check`` job on the ``io`` queue (the button and the daily beat).

    Raises:
        ApplicationError: 409 ``job_running``; 503 ``broker_unavailable``.
    """
    return job_create_exclusive(kind=UPDATE_CHECK_KIND, user=user,
                                what="A Civitai update check", message="Waiting to ask Civitai.",
                                result={"cursor": 0}, task=update_check_task if enqueue else None,
                                queue="io")


def update_check_run(*, job_id: str, client: CivitaiClient | None = None) -> Job:
    """Run the update-check job ``job_id`` through the job kernel, continuing after the saved
    cursor; a rate limit or outage that outlasts the retries fails it with the cursor kept."""

    def work(run: JobRun):
        state = dict(run.job.result or {})
        own = client or CivitaiClient()
        try:
            update_check(client=own, after_model=int(state.get("cursor") or 0), run=run,
                         state=state)
        finally:
            if client is None:
                own.close()
        return state, (f"{state['flagged']} update(s) available; {state['checked']} LoRAs of "
                       f"{state['models']} models checked")

    return job_run(job_id=job_id, work=work, message="Asking Civitai for newer versions",
                   errors={CivitaiError: lambda exc: (exc.code, exc.message)})


def lora_update_ignore(*, lora: LoraModel, version_id: int | None = None,
                       model: bool | None = None) -> LoraModel:
    """Ignore one version (``version_id``) or every update of the model (``model=True``;
    ``False`` stops ignoring it); the flag is recomputed from the stored update.

    Raises:
        ApplicationError: 400 ``invalid`` when neither is given.
    """
    if version_id is None and model is None:
        raise ApplicationError("invalid", "Give version_id or model.",
                               fields={"version_id": ["This field or model is required."]})
    if version_id is not None:
        lora.update_ignored_versions = sorted({*(lora.update_ignored_versions or []),
                                               int(version_id)})
    if model is not None:
        lora.update_ignore_model = bool(model)
    pending = (lora.civitai_update or {}).get("version_id")
    if lora.update_ignore_model or pending in lora.update_ignored_versions:
        lora.update_available = False
    lora.save(update_fields=["update_ignored_versions", "update_ignore_model",
                             "update_available", "updated_at"])
    return lora


def lora_download_update(*, lora: LoraModel, user) -> Download:
    """Download the newer version found by the check into the same root and folder as
    ``lora`` (the ordinary download job: resume, SHA-256 check, never overwriting).

    Raises:
        ApplicationError: 409 ``no_update`` when none is flagged; 400 ``outside_root`` when the
            folder leaves its root; the download's own errors (409 ``file_exists``...).
    """
    from ..paths import real_path_in_root
    from .downloads import download_create

    version_id = (lora.civitai_update or {}).get("version_id")
    if not lora.update_available or not version_id:
        raise ApplicationError("no_update", "No newer Civitai version is flagged for this "
                               "LoRA; run the update check.", status=409)
    real_path_in_root(lora.root.path, lora.abs_path)  # next to a file outside: never
    return download_create(user=user, model_version_id=int(version_id), root_id=lora.root_id,
                           folder=lora.folder)


_VERSION_ID = re.compile(r"^\d{1,18}$")


def lora_civitai_link(*, lora: LoraModel, url: str | None = None,
                      version_id: int | None = None,
                      client: CivitaiClient | None = None) -> LoraModel:
    """Link ``lora`` to a Civitai model version by hand (a URL of civitai.com or another
    allowed host, ``/models/1?modelVersionId=2``, ``/model-versions/2``,
    ``/api/download/models/2``, or the id) and merge its metadata as a refresh would
    (trigger words merged, a user's base model kept, sidecars written); the update state is
    computed from the model.

    Raises:
        ApplicationError: 400 ``invalid`` / ``invalid_url`` / ``url_not_allowed``;
            CivitaiNotFound (404), CivitaiRateLimited (429), CivitaiUnavailable (503).
    """
    from .civitai import lora_civitai_apply
    from .downloads import _parse_version_url

    own = client or sync_client()
    try:
        if version_id is None:
            if not url:
                raise ApplicationError("invalid", "Give url or version_id.",
                                       fields={"url": ["This field or version_id is required."]})
            text = url.strip()
            version_id = int(text) if _VERSION_ID.match(text) else _parse_version_url(text, own)
        version = own.version_get(int(version_id))
        model = None
        if version.get("modelId"):
            try:
                model = own.model_get(int(version["modelId"]))
            except CivitaiNotFound:
                model = None
        lora.civitai_version_id = None  # the link replaces whatever matched before
        lora = lora_civitai_apply(lora=lora, version=version, model=model, client=own)
    finally:
        if client is None:
            own.close()
    return lora_update_state_apply(lora=lora, model=model)
