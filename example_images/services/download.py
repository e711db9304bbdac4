"""Bulk download of example images from Civitai: one ``example_images`` Job at a time.

Facts (docs/protocols.md#civitai-images-listing):
``GET /api/v1/images?modelVersionId=&limit=&cursor=`` lists the images of a model version,
paginated by ``metadata.nextCursor``; in that listing ``nsfwLevel`` is a string and the bitmask
(1 PG, 2 PG-13, 4 R, 8 X, 16 XXX) is ``browsingLevel``; ``meta`` is free-form and may be
null. Image files live on Civitai's CDN (``image.civitai.com``), reached
through :func:`loras.outbound.outbound_get` and paced by the shared limiter.

State and restarts: everything the job needs to continue lives in ``job.result``
(``lora_ids``, ``done``, ``current``, ``cursor`` of the current LoRA's listing, counters), and
every stored image is a row, so running the task again for the same job continues where it
stopped: LoRAs in ``done`` are skipped, the listing restarts at the saved cursor, and images
already stored (row, or a finished file ``civitai-<id>.*`` from a crash between file and row)
are never fetched again. A 429 or network error after the client's retries puts the job back
to ``queued`` and enqueues it again after ``EXAMPLE_IMAGES_RETRY_SECONDS`` (or the server's
``Retry-After``); no image is ever deleted for it.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from django.conf import settings
from django.db import transaction

from core.exceptions import ApplicationError
from jobs.kernel import JobCanceled, JobPaused, JobRequeued, JobRun, job_run
from jobs.models import Job
from jobs.services import (
    job_create_exclusive,
    job_enqueue,
    job_pause,
    job_resume,
    job_save,
    job_succeed,
)
from loras.civitai import (
    CivitaiClient,
    CivitaiError,
    CivitaiNotFound,
    CivitaiRateLimited,
    CivitaiUnavailable,
)
from loras.models import LoraModel
from loras.outbound import outbound_get

from ..files import example_path, existing_named, image_decode, lora_folder, write_atomic
from ..models import ExampleImage
from ..selectors import DOWNLOAD_KIND, download_job_active
from ..tasks import example_download_run as example_download_run_task

log = logging.getLogger(__name__)
RESUMABLE_CODES = ("server_restarted", "worker_lost")
MAX_ERRORS_KEPT = 50


class _Stop(Exception):
    """Pause or cancel was requested (``reason``: ``"pause"`` or ``"cancel"``)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# ----------------------------------------------------------------------------- start / control
def _options(*, limit_per_model, nsfw_max, optimize) -> dict:
    limit = settings.EXAMPLE_IMAGES_LIMIT_PER_MODEL if limit_per_model is None else limit_per_model
    nsfw = settings.EXAMPLE_IMAGES_NSFW_MAX if nsfw_max is None else nsfw_max
    opt = settings.EXAMPLE_IMAGES_OPTIMIZE if optimize is None else optimize
    return {"limit_per_model": int(limit), "nsfw_max": int(nsfw), "optimize": bool(opt)}


def example_download_start(*, user, lora_ids: list[int] | None = None,
                           limit_per_model: int | None = None, nsfw_max: int | None = None,
                           optimize: bool | None = None, force: bool = False,
                           enqueue: bool = True) -> Job:
    """Create the queued download job over ``lora_ids`` (default: every present, hashed LoRA)
    and enqueue it on the ``io`` queue after commit.

    Args:
        limit_per_model: Civitai images to keep per LoRA (default
            ``EXAMPLE_IMAGES_LIMIT_PER_MODEL``).
        nsfw_max: highest browsing level kept (1, 2, 4, 8 or 16; default
            ``EXAMPLE_IMAGES_NSFW_MAX``).
        optimize: store WebP shrunk to ``EXAMPLE_IMAGES_OPTIMIZE_MAX_DIM`` pixels.
        force: also visit LoRAs that already have Civitai examples (``force/``); images
            already stored are still never fetched twice.

    Raises:
        ApplicationError: 409 ``job_running`` when a download job is queued, running or
            paused; 404 ``not_found`` for an unknown id; 400 ``lora_not_hashed``.
    """
    opts = _options(limit_per_model=limit_per_model, nsfw_max=nsfw_max, optimize=optimize)
    qs = LoraModel.objects.filter(status=LoraModel.Status.PRESENT).exclude(sha256="")
    if lora_ids is not None:
        wanted = [int(i) for i in lora_ids]
        found = set(LoraModel.objects.filter(pk__in=wanted)
                    .exclude(status=LoraModel.Status.TRASHED).values_list("pk", flat=True))
        missing = [i for i in wanted if i not in found]
        if missing:
            raise ApplicationError("not_found", f"No LoRA {missing[0]}.", status=404)
        hashed = set(qs.filter(pk__in=wanted).values_list("pk", flat=True))
        if not hashed:
            raise ApplicationError("lora_not_hashed", "None of these LoRAs is hashed yet; "
                                   "scan the library first.")
        ids = [i for i in dict.fromkeys(wanted) if i in hashed]
    else:
        ids = list(qs.order_by("name", "id").values_list("pk", flat=True))
    job = job_create_exclusive(
        kind=DOWNLOAD_KIND, user=user, total_steps=len(ids), what="An example-image download",
        result={"options": opts, "force": bool(force), "lora_ids": ids, "done": [],
                "current": None, "current_model": "", "cursor": None,
                "processed_models": 0, "total_models": len(ids), "images": 0,
                "skipped_models": 0, "errors": [], "errors_total": 0, "retries": 0,
                "speed": 0.0,
                "eta_seconds": None},
        task=example_download_run_task if enqueue else None, queue="io")
    return job


def example_download_enqueue(job: Job, *, countdown: float | None = None) -> None:
    """Publish the task of download ``job`` on the ``io`` queue (resume, retry, restart).

    Raises:
        ApplicationError: 503 ``broker_unavailable`` (the job is failed, see
            :func:`jobs.services.job_enqueue`).
    """

    job_enqueue(job=job, task=example_download_run_task, args=[str(job.pk)], queue="io",
                countdown=countdown)


def _running_job() -> Job:
    job = download_job_active()
    if job is None:
        raise ApplicationError("download_not_running", "No example-image download is running.")
    return job


def example_download_pause() -> Job:
    """Ask the active download to pause (:func:`jobs.services.job_pause`): a queued job is
    paused at once, a running one after the image page it is on (its state is saved).

    Raises:
        ApplicationError: 400 ``download_not_running``.
    """
    return job_pause(job=_running_job())


def example_download_resume(*, enqueue: bool = True) -> Job:
    """Resume the paused download (queued again; continues from its saved state), or drop a
    pause a running job has not reached yet (:func:`jobs.services.job_resume`).

    Raises:
        ApplicationError: 400 ``download_not_running`` when no download is paused or running.
    """
    job = _running_job()
    if job.status != Job.Status.PAUSED and not job.pause_requested:
        raise ApplicationError("download_not_running", "The download is not paused.")
    return job_resume(job=job, enqueue=enqueue)


def example_downloads_resume(*, enqueue: bool = True) -> list[Job]:
    """Bring back the download job a restart interrupted (called when a worker starts).

    ``manage.py serve`` fails every unfinished job of the previous process with
    ``server_restarted`` (and the reaper uses ``worker_lost``); the newest such download job is
    queued again (or put back to ``paused`` when a pause had been asked), unless another
    download is active. Its saved state makes it continue where it stopped.
    Returns the jobs resumed (0 or 1).
    """
    if download_job_active() is not None:
        return []
    job = (Job.objects.filter(kind=DOWNLOAD_KIND).order_by("-created_at").first())
    if job is None or job.status != Job.Status.FAILED or job.error_code not in RESUMABLE_CODES:
        return []
    status = Job.Status.PAUSED if job.pause_requested else Job.Status.QUEUED
    with transaction.atomic():
        # Conditional update: of several workers starting at once, one wins.
        if not Job.objects.filter(pk=job.pk, status=Job.Status.FAILED).update(
                status=status, error_code="", error_message="", finished_at=None):
            return []
        job.refresh_from_db()
        job.message = ("Paused (after a restart)" if job.pause_requested
                       else "Resuming after a restart")
        job_save(job=job, fields=["message"])
        if enqueue and status == Job.Status.QUEUED:
            transaction.on_commit(lambda: example_download_enqueue(job))
    return [job]


# ----------------------------------------------------------------------------- the run
class _Run:
    """One execution of the task for a job: state in ``job.result``, counters for speed."""

    def __init__(self, job: Job, client: CivitaiClient):
        self.job = job
        self.state = job.result
        self.client = client
        self.opts = self.state["options"]
        self.started = time.monotonic()
        self.stored_now = 0
        self._local = threading.local()
        self._flags_checked = 0.0

    # -- state ---------------------------------------------------------------------------
    def save(self, message: str = "") -> None:
        state, job = self.state, self.job
        elapsed = max(time.monotonic() - self.started, 1e-6)
        state["speed"] = round(self.stored_now / elapsed, 3)
        done, total = len(state["done"]), state["total_models"]
        state["processed_models"] = done
        per_model = elapsed / max(done - state.get("done_at_start", 0), 1)
        state["eta_seconds"] = round(per_model * (total - done), 1) if done else None
        job.step, job.total_steps = done, total
        job.progress = min(done / total, 1.0) if total else 0.0
        job.eta_seconds = state["eta_seconds"]
        if message:
            job.message = message[:500]
        job.result = state
        job_save(job=job, fields=["result", "step", "total_steps", "progress", "eta_seconds",
                                  "message"])

    def error(self, lora_id: int | None, reason: str, *, item: str = "") -> None:
        """Record a per-item failure in ``result.errors`` as ``{"item": what failed (the LoRA's
        name, plus the Civitai image id for one image), "reason", "lora": id, "message": the
        reason again (older clients read it)}``; the last ``MAX_ERRORS_KEPT`` are kept and
        ``result.errors_total`` counts them all."""
        if not item:
            name = (LoraModel.objects.filter(pk=lora_id).values_list("name", flat=True).first()
                    if lora_id is not None else None)
            item = name or f"LoRA #{lora_id}"
        errors = self.state["errors"]
        errors.append({"item": item[:300], "reason": reason[:300], "lora": lora_id,
                       "message": reason[:300]})
        self.state["errors_total"] = self.state.get("errors_total", len(errors) - 1) + 1
        del errors[:-MAX_ERRORS_KEPT]

    def check_flags(self) -> None:
        flags = Job.objects.filter(pk=self.job.pk).values(
            "pause_requested", "cancel_requested").first() or {}
        if flags.get("cancel_requested"):
            raise _Stop("cancel")
        if flags.get("pause_requested"):
            raise _Stop("pause")

    # -- one image -----------------------------------------------------------------------
    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.headers["User-Agent"] = "Atelier/0.1 (+example images)"
        return session

    def fetch(self, url: str) -> bytes:
        """The bytes at ``url`` (≤ ``EXAMPLE_IMAGES_MAX_BYTES``), paced and retried by the
        shared Civitai retry loop. Raises CivitaiRateLimited/CivitaiUnavailable (retryable),
        ApplicationError (this image only)."""
        session = self._session()
        response = self.client._send(  # the one shared retry loop (429/5xx/network)
            lambda: outbound_get(session, url, timeout=self.client.timeout), "image")
        with response:
            if response.status_code != 200:
                raise ApplicationError("fetch_failed", f"The image answered HTTP "
                                       f"{response.status_code}.")
            chunks, total = [], 0
            try:
                for chunk in response.iter_content(64 * 1024):
                    total += len(chunk)
                    if total > settings.EXAMPLE_IMAGES_MAX_BYTES:
                        raise ApplicationError("file_too_large", "The image is larger than "
                                               f"{settings.EXAMPLE_IMAGES_MAX_BYTES} bytes.")
                    chunks.append(chunk)
            except (requests.RequestException, ConnectionError) as exc:
                raise CivitaiUnavailable(
                    f"The image download broke: {type(exc).__name__}.") from exc
        return b"".join(chunks)

    def file(self, *, folder: str, item: dict) -> tuple[str, object]:
        """Runs in a worker thread: the finished file of ``item`` (adopted when a crash left
        one between file and row, else fetched, checked by Pillow and written atomically).
        Returns ``(relative path, DecodedImage)``; no database access."""
        stem = f"civitai-{int(item['id'])}"
        existing = existing_named(folder, stem)
        if existing:
            with open(example_path(existing), "rb") as fh:
                return existing, image_decode(fh.read())
        decoded = image_decode(self.fetch(item["url"]), optimize=self.opts["optimize"])
        rel = f"{folder}/{stem}.{decoded.ext}"
        write_atomic(rel, decoded.data)
        return rel, decoded

    # -- one LoRA ------------------------------------------------------------------------
    def lora(self, lora_id: int, *, resuming: bool = False) -> None:
        """Download the missing images of LoRA ``lora_id`` (``resuming``: this LoRA was
        being processed when the job stopped, so it is never skipped)."""
        state = self.state
        lora = LoraModel.objects.filter(pk=lora_id).exclude(
            status=LoraModel.Status.TRASHED).first()
        if lora is None or not lora.sha256:
            self.error(lora_id, "The LoRA is gone or not hashed.")
            return
        state["current_model"] = lora.name
        folder = lora_folder(lora.sha256)
        present = dict(ExampleImage.objects.filter(lora=lora, civitai_image_id__isnull=False)
                       .values_list("civitai_image_id", "file"))
        if present and not state.get("force") and not resuming:
            state["skipped_models"] += 1
            return
        version_id = lora.civitai_version_id
        if not version_id:
            try:
                version_id = self.client.version_by_hash(lora.sha256).get("id")
            except CivitaiNotFound:
                self.error(lora_id, "Not on Civitai.")
                return
        if not version_id:
            self.error(lora_id, "Civitai returned no model version.")
            return
        limit, nsfw_max = self.opts["limit_per_model"], self.opts["nsfw_max"]
        have = len(present)
        order = (ExampleImage.objects.filter(lora=lora).count())
        cursor = state.get("cursor")
        self.save(f"{lora.name}: listing images")
        while have < limit:
            page = self.client.images_page(model_version_id=int(version_id),
                                           limit=int(settings.EXAMPLE_IMAGES_PAGE_SIZE),
                                           cursor=cursor)
            todo = []
            for item in page.get("items") or []:
                if have + len(todo) >= limit:
                    break
                if not item.get("id") or not item.get("url"):
                    continue
                if item.get("type", "image") != "image":
                    continue
                level = item.get("browsingLevel")
                level = level if isinstance(level, int) else item.get("nsfwLevel")
                if isinstance(level, int) and level > nsfw_max:
                    continue
                if int(item["id"]) in present:
                    continue
                todo.append(item)
            have += self.page(lora=lora, folder=folder, items=todo, order=order)
            order += len(todo)
            cursor = (page.get("metadata") or {}).get("nextCursor")
            state["cursor"] = cursor
            self.save(f"{lora.name}: {have} image{'s' if have != 1 else ''}")
            if not cursor:
                break
            self.check_flags()

    def page(self, *, lora: LoraModel, folder: str, items: list[dict], order: int) -> int:
        """Fetch ``items`` concurrently (``EXAMPLE_IMAGES_CONCURRENCY``), store them in order.
        Images that fail for good are logged in ``errors``; a retryable failure is raised
        after the others are stored."""
        retryable: CivitaiError | None = None
        stored = 0
        workers = max(1, int(settings.EXAMPLE_IMAGES_CONCURRENCY))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(self.file, folder=folder, item=i) for i in items]
            for offset, (item, future) in enumerate(zip(items, futures, strict=True)):
                image_id = int(item["id"])
                try:
                    rel, decoded = future.result()
                    _row_create(lora=lora, folder=folder, rel=rel, item=item, decoded=decoded,
                                order=order + offset)
                except (CivitaiRateLimited, CivitaiUnavailable) as exc:
                    retryable = retryable or exc
                    continue
                except ApplicationError as exc:
                    self.error(lora.pk, exc.message,
                               item=f"{lora.name} · Civitai image {image_id}")
                    continue
                stored += 1
                self.state["retries"] = 0
                self.stored_now += 1
                self.state["images"] += 1
        if retryable is not None:
            raise retryable
        return stored

    # -- all -----------------------------------------------------------------------------
    def run(self) -> Job:
        state = self.state
        state["done_at_start"] = len(state["done"])
        for lora_id in state["lora_ids"]:
            if lora_id in state["done"]:
                continue
            self.check_flags()
            resuming = state.get("current") == lora_id
            if not resuming:
                state["current"], state["cursor"] = lora_id, None
            try:
                self.lora(lora_id, resuming=resuming)
            except (CivitaiRateLimited, CivitaiUnavailable):
                raise
            except CivitaiError as exc:  # this LoRA only (login required, bad answer...)
                self.error(lora_id, exc.message)
            state["done"].append(lora_id)
            state["current"], state["cursor"] = None, None
            self.save()
        state["current_model"] = ""
        n, failed = state["images"], state.get("errors_total", len(state["errors"]))
        message = f"{n} image{'s' if n != 1 else ''} downloaded"
        if failed:
            message += f", {failed} error{'s' if failed != 1 else ''}"  # listed in result.errors
        return job_succeed(job=self.job, result=state, message=message)


def _row_create(*, lora, folder, rel, item, decoded, order) -> ExampleImage:
    meta = item.get("meta") if isinstance(item.get("meta"), dict) else {}
    level = item.get("browsingLevel")
    level = level if isinstance(level, int) else item.get("nsfwLevel")
    seed = meta.get("seed")
    return ExampleImage.objects.create(
        lora=lora, sha256=folder, file=rel, source=ExampleImage.Source.CIVITAI,
        civitai_image_id=int(item["id"]), url=str(item.get("url") or "")[:2000],
        width=decoded.width, height=decoded.height, size=len(decoded.data),
        nsfw_level=level if isinstance(level, int) and 0 <= level < 2**15 else 0,
        prompt=str(meta.get("prompt") or ""), negative_prompt=str(meta.get("negativePrompt") or ""),
        seed=int(seed) if isinstance(seed, (int, float)) and 0 <= seed < 2**63 else None,
        steps=meta.get("steps") if isinstance(meta.get("steps"), int) and meta["steps"] >= 0
        else None,
        sampler=str(meta.get("sampler") or "")[:100],
        cfg_scale=float(meta["cfgScale"]) if isinstance(meta.get("cfgScale"), (int, float))
        else None,
        resources=meta.get("civitaiResources") or meta.get("resources") or [],
        meta=meta, order=order)


def example_download_run(*, job_id: str, client: CivitaiClient | None = None) -> Job:
    """Run (or continue) download job ``job_id`` through the job kernel; see the module doc.
    Never raises: the job ends succeeded, canceled, paused, queued again (rate limit /
    network; retried after a delay, at most ``EXAMPLE_IMAGES_MAX_RETRIES`` times in a row,
    then failed with the Civitai error code), or failed (``internal_error``)."""

    def work(kernel_run: JobRun):
        own = client or CivitaiClient()
        run = _Run(kernel_run.job, own)
        try:
            return run.run()
        except _Stop as stop:
            if stop.reason == "cancel":
                run.save()
                raise JobCanceled() from None
            run.save("Paused")
            raise JobPaused() from None
        except (CivitaiRateLimited, CivitaiUnavailable) as exc:
            run.state["retries"] = run.state.get("retries", 0) + 1
            if run.state["retries"] > settings.EXAMPLE_IMAGES_MAX_RETRIES:
                run.save()
                raise ApplicationError(exc.code, exc.message + " (images kept; start the "
                                       "download again to continue)") from exc
            delay = max(float(exc.retry_after or 0),
                        float(settings.EXAMPLE_IMAGES_RETRY_SECONDS))
            message = f"{exc.message} Retrying in {delay:.0f} s."
            run.save(message)
            raise JobRequeued(message, countdown=delay) from exc
        except CivitaiError:
            run.save()
            raise
        finally:
            if client is None:
                own.close()

    return job_run(job_id=job_id, work=work, message="Downloading example images")
