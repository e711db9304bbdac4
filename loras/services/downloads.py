"""Model downloads from Civitai: a ``Download`` row + a ``download`` Job on the ``io`` queue.

Facts (docs/protocols.md#civitai-downloads): ``GET /api/download/models/{versionId}``
answers a 307 to a presigned file URL (which honours ``Range``); with
``Content-Type: application/json`` an early-access or login-required file gives ``401``/``403``
JSON instead of an HTML login page.
``files[].hashes.SHA256`` is the upper-case SHA-256 of the whole file; ``files[].name`` is the
download file name.

Safety: bytes go to ``<target>.part`` (resumed with ``Range: bytes=N-`` when it exists, so a
re-delivered task or a new download of the same file continues), the SHA-256 is checked, and
the file is linked into place without ever overwriting (``file_exists``); a canceled or
corrupt download leaves no file behind.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet

from core.exceptions import ApplicationError
from core.storage import fsync_dir
from jobs.kernel import JobCanceled, JobRun, job_run
from jobs.models import Job
from jobs.services import job_create, job_enqueue, job_succeed

from ..civitai import CivitaiClient, CivitaiError, CivitaiNotFound, sync_client
from ..models import Download, LibraryRoot
from ..outbound import outbound_check
from ..paths import normalize_relative, relative_to_root, resolve_in_root
from ..tasks_civitai import download_run as download_run_task
from . import library_roots_sync, lora_register
from .civitai import lora_civitai_apply, place_new_file

DOWNLOAD_KIND = "download"
CHUNK_BYTES = 256 * 1024  # bytes per read: the cancel check runs once per chunk
MAX_STEP = 2**31 - 1  # Job.step is a 32-bit integer on PostgreSQL
_UNSAFE = re.compile(r'[\x00-\x1f<>:"/\\|?*]+')


def sanitize_component(value: str, *, max_length: int = 100) -> str:
    """One safe path component: no separators, control or Windows-reserved characters, no
    leading/trailing dots or spaces; '' when nothing is left."""
    cleaned = _UNSAFE.sub("_", str(value or "")).strip(" .")
    return cleaned[:max_length].strip(" .")


def _parse_version_url(url: str, client: CivitaiClient) -> int:
    """The model version id of a Civitai URL: ``/models/123?modelVersionId=456``,
    ``/models/123`` (its newest version), ``/api/download/models/456`` or
    ``/model-versions/456``.

    Raises:
        ApplicationError: 400 ``url_not_allowed`` / ``invalid_url``; Civitai errors.
    """
    outbound_check(url)
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    if query.get("modelVersionId", [""])[0].isdigit():
        return int(query["modelVersionId"][0])
    if m := re.search(r"/api/download/models/(\d+)", parts.path):
        return int(m.group(1))
    if m := re.search(r"/(?:api/v1/)?model-versions/(\d+)", parts.path):
        return int(m.group(1))
    if m := re.search(r"/(?:api/v1/)?models/(\d+)", parts.path):
        versions = client.model_get(int(m.group(1))).get("modelVersions") or []
        if versions and versions[0].get("id"):
            return int(versions[0]["id"])
        raise CivitaiNotFound(f"Civitai model {m.group(1)} has no published version.")
    raise ApplicationError("invalid_url", "Not a Civitai model, model version or download URL.",
                           fields={"url": ["Use a civitai.com model or download URL."]})


def _primary_file(version: dict) -> dict:
    files = version.get("files") or []
    primary = next((f for f in files if f.get("primary")), None)
    primary = primary or next((f for f in files if f.get("type") == "Model"), None)
    if primary is None:
        raise ApplicationError("civitai_no_file", "This model version has no downloadable file "
                               "(archived or not public).", status=404)
    return primary


def download_folder(*, template: str, version: dict, model: dict | None) -> str:
    """Fill ``template`` (``{base_model}``, ``{first_tag}``, ``{author}``) from Civitai
    metadata; each component is sanitized and empty components are dropped."""
    model = model or {}
    tags = model.get("tags") or []
    values = {"base_model": version.get("baseModel") or "",
              "first_tag": tags[0] if tags else "",
              "author": (model.get("creator") or {}).get("username") or ""}
    safe = {k: sanitize_component(v) for k, v in values.items()}
    try:
        filled = template.format(**safe)
    except (KeyError, IndexError, ValueError):
        raise ApplicationError("invalid_template", f"DOWNLOAD_PATH_TEMPLATE {template!r} "
                               "may only use {base_model}, {first_tag} and {author}.") from None
    return "/".join(p for p in (sanitize_component(x) for x in filled.split("/")) if p)


def _trim_version(version: dict) -> dict:
    keep = dict(version)
    keep["images"] = (version.get("images") or [])[:3]
    keep.pop("description", None)
    return keep


def _trim_model(model: dict | None) -> dict | None:
    if not model:
        return None
    return {k: model[k] for k in ("id", "name", "type", "nsfw", "poi", "tags", "creator",
                                  "allowNoCredit", "allowCommercialUse", "allowDerivatives",
                                  "allowDifferentLicense") if k in model}


def _target_path(download: Download) -> str:
    folder = resolve_in_root(download.root.path, download.target_folder)
    return os.path.join(folder, download.file_name)


def download_create(*, user, model_version_id: int | None = None, url: str | None = None,
                    root_id: int | None = None, folder: str | None = None,
                    enqueue: bool = True) -> Download:
    """Resolve the Civitai version (sync: one or two API calls), choose the target
    (``root`` id, default the first enabled root; ``folder`` relative to it, default
    ``DOWNLOAD_PATH_TEMPLATE``), and create the Download and its queued ``download`` Job.

    Raises:
        ApplicationError: 400 ``invalid`` / ``invalid_url`` / ``url_not_allowed`` /
            ``invalid_path`` / ``unsupported_file``; 404 ``root_not_found`` /
            ``civitai_not_found`` / ``civitai_no_file``; 409 ``file_exists`` /
            ``already_downloading``; 429 ``civitai_rate_limited``; 503 ``civitai_unavailable``
            / ``broker_unavailable``.
    """
    if not model_version_id and not url:
        raise ApplicationError("invalid", "Give model_version_id or url.",
                               fields={"model_version_id": ["This field or url is required."]})
    client = sync_client()
    try:
        version_id = int(model_version_id) if model_version_id else _parse_version_url(url,
                                                                                      client)
        version = client.version_get(version_id)
        model = None
        if version.get("modelId"):
            try:
                model = client.model_get(version["modelId"])
            except CivitaiNotFound:
                model = None
    finally:
        client.close()
    primary = _primary_file(version)
    file_name = sanitize_component(os.path.basename(primary.get("name") or ""), max_length=200)
    if not file_name.lower().endswith(".safetensors"):
        raise ApplicationError("unsupported_file", f"Only .safetensors files can be added to "
                               f"the library (this one is {file_name!r}).")
    if root_id is not None:
        root = LibraryRoot.objects.filter(pk=root_id, enabled=True).first()
        if root is None:
            raise ApplicationError("root_not_found", f"No library root {root_id}.", status=404)
    else:
        root = (LibraryRoot.objects.filter(enabled=True).order_by("pk").first()
                or library_roots_sync()[0])
    if folder is None:
        folder = download_folder(template=settings.DOWNLOAD_PATH_TEMPLATE, version=version,
                                 model=model)
    folder = normalize_relative(folder)
    resolve_in_root(root.path, folder)
    expected = ((primary.get("hashes") or {}).get("SHA256") or "").lower()
    download_url = primary.get("downloadUrl") or version.get("downloadUrl") or ""
    download = Download(user=user, source_url=download_url or url or "",
                        civitai_model_id=version.get("modelId"), civitai_version_id=version_id,
                        root=root, target_folder=folder, file_name=file_name,
                        expected_sha256=expected,
                        total_bytes=int(primary["sizeKB"] * 1024) if primary.get("sizeKB")
                        else None)
    if os.path.exists(_target_path(download)):
        raise ApplicationError("file_exists", f"{folder}/{file_name} already exists.",
                               status=409)
    with transaction.atomic():
        busy = Download.objects.filter(
            root=root, target_folder=folder, file_name=file_name,
            job__status__in=[Job.Status.QUEUED, Job.Status.RUNNING]).exists()
        if busy:
            raise ApplicationError("already_downloading",
                                   f"{folder}/{file_name} is already being downloaded.",
                                   status=409)
        job = job_create(kind=DOWNLOAD_KIND, user=user, message="Queued",
                         celery_task_id=str(uuid.uuid4()))
        job.result = {"civitai_version": _trim_version(version), "civitai_model":
                      _trim_model(model)}
        job.save(update_fields=["result"])
        download.job = job
        download.save()
        if enqueue:  # recorded with the job, published at the commit (503: broker down, #7)
            job_enqueue(job=job, task=download_run_task, args=[download.pk], queue="io")
    return download


def download_list(*, user) -> QuerySet[Download]:
    """The downloads of ``user``, newest first, with their job (a read)."""
    return Download.objects.filter(user=user).select_related("job", "root")


def _slot_gate(job: Job) -> tuple[float, str] | None:
    """The kernel's gate for a download: ``None`` (start now) while fewer than
    ``DOWNLOAD_CONCURRENCY`` other downloads run, else wait ``DOWNLOAD_REQUEUE_SECONDS``
    (default 2 s) in the queue. Runs in the claim's transaction; the row lock serializes
    concurrent claims on PostgreSQL."""
    running = Job.objects.select_for_update().filter(
        kind=DOWNLOAD_KIND, status=Job.Status.RUNNING).exclude(pk=job.pk).count()
    if running < settings.DOWNLOAD_CONCURRENCY:
        return None
    return float(getattr(settings, "DOWNLOAD_REQUEUE_SECONDS", 2.0)), "Waiting for a download slot"


def _human(num: float) -> str:
    return f"{num / (1024 * 1024):.1f} MiB"


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def download_run(*, download_id: int, client: CivitaiClient | None = None) -> Job:
    """Run download ``download_id`` (see the module doc) through the job kernel. Never
    raises: failures end the Job (``civitai_login_required``, ``civitai_rate_limited``,
    ``civitai_unavailable``, ``download_interrupted`` (the ``.part`` is kept for a resume),
    ``sha256_mismatch``, ``file_exists``, ``storage_error``, ``internal_error``); cancel
    removes the ``.part``.

    When ``DOWNLOAD_CONCURRENCY`` downloads already run, the job stays queued and the task is
    published again after ``DOWNLOAD_REQUEUE_SECONDS`` (default 2 s).
    """
    download = Download.objects.select_related("job", "root").get(pk=download_id)
    target = _target_path(download)
    part = target + ".part"

    def work(run: JobRun):
        own = client or CivitaiClient()
        try:
            return _download_stream(download=download, run=run, target=target, part=part,
                                    client=own)
        finally:
            if client is None:
                own.close()

    def interrupted(exc) -> tuple[str, str]:
        return ("download_interrupted", f"The connection broke ({type(exc).__name__}); run "
                "the download again to resume it.")

    def storage(exc) -> tuple[str, str]:  # disk full, permission denied (#7); .part kept
        return ("storage_error", f"Could not write {download.file_name}: "
                f"{getattr(exc, 'strerror', None) or exc}; free space or fix permissions, "
                "then run the download again to resume it.")

    if download.job.cancel_requested and not download.job.is_finished:
        _remove(part)
    return job_run(job_id=download.job_id, work=work, message="Starting download",
                   gate=_slot_gate, errors={
                       CivitaiError: lambda exc: (exc.code, exc.message),
                       requests.RequestException: interrupted, ConnectionError: interrupted,
                       OSError: storage})


def _download_stream(*, download: Download, run: JobRun, target: str, part: str,
                     client: CivitaiClient) -> Job:
    job = run.job
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.exists(target):
        raise ApplicationError("file_exists", f"{download.file_name} already exists in "
                               f"{download.target_folder or 'the root'}.", status=409)
    start = os.path.getsize(part) if os.path.exists(part) else 0
    response = client.download_open(download.civitai_version_id, start=start,
                                    url=download.source_url or None)
    hasher = hashlib.sha256()
    reporter = run.reporter
    with response:
        total = download.total_bytes
        content_range = response.headers.get("Content-Range", "")
        if response.status_code == 416:  # the .part already holds every byte: verify it
            stream_body, total = False, start
        elif response.status_code == 206:
            m = re.match(r"bytes (\d+)-\d+/(\d+)", content_range)
            if not m or int(m.group(1)) != start:
                _remove(part)  # the next run starts from byte 0
                raise ApplicationError("download_interrupted", "The server resumed at another "
                                       f"offset ({content_range!r}); run the download again.")
            stream_body, total = True, int(m.group(2))
        else:  # 200: the server sent the whole file (a Range it ignored included)
            start = 0
            if response.headers.get("Content-Length", "").isdigit():
                total = int(response.headers["Content-Length"])
            stream_body = True
        if start:
            with open(part, "rb") as existing:
                while chunk := existing.read(CHUNK_BYTES):
                    hasher.update(chunk)
        done = start
        began, began_bytes = time.monotonic(), start
        last_saved = 0.0
        scale = 1 if not total or total <= MAX_STEP else 1024
        if stream_body:
            with open(part, "ab" if start else "wb") as out:
                for chunk in response.iter_content(CHUNK_BYTES):
                    if reporter.should_cancel():
                        out.close()
                        _remove(part)
                        raise JobCanceled("Download canceled.")
                    out.write(chunk)
                    hasher.update(chunk)
                    done += len(chunk)
                    elapsed = max(time.monotonic() - began, 1e-6)
                    speed = (done - began_bytes) / elapsed
                    eta = (total - done) / speed if total and speed else None
                    reporter.step(done // scale, (total or done) // scale,
                                  f"{_human(done)} / {_human(total or done)}, "
                                  f"{_human(speed)}/s" + (f", ETA {eta:.0f} s" if eta else ""))
                    if time.monotonic() - last_saved >= 1.0:
                        last_saved = time.monotonic()
                        Download.objects.filter(pk=download.pk).update(
                            downloaded_bytes=done, total_bytes=total)
                out.flush()
                os.fsync(out.fileno())
    download.downloaded_bytes = done
    download.total_bytes = total or done
    download.save(update_fields=["downloaded_bytes", "total_bytes"])
    digest = hasher.hexdigest()
    if download.expected_sha256 and digest != download.expected_sha256.lower():
        _remove(part)
        raise ApplicationError("sha256_mismatch", f"The file's SHA-256 {digest[:12]}… does not "
                               f"match Civitai's {download.expected_sha256[:12]}…; deleted.")
    try:
        place_new_file(src=part, dst=target)  # atomic and never overwrites
    except FileExistsError:
        _remove(part)
        raise ApplicationError("file_exists", f"{download.file_name} appeared in "
                               f"{download.target_folder or 'the root'} meanwhile; the "
                               "download was not kept.", status=409) from None
    fsync_dir(os.path.dirname(target))
    lora = lora_register(path=target)
    info = job.result or {}
    if info.get("civitai_version"):
        lora = lora_civitai_apply(lora=lora, version=info["civitai_version"],
                                  model=info.get("civitai_model"), client=client)
    download.lora = lora
    download.save(update_fields=["lora"])
    seconds = time.monotonic() - began
    return job_succeed(job=job, result={
        "lora": lora.pk, "path": relative_to_root(download.root.path, target),
        "bytes": download.total_bytes, "resumed_from": start, "sha256": digest,
        "seconds": round(seconds, 3)}, message=f"Downloaded {download.file_name}")
