"""The dispatcher: no accepted job waits forever (docs/architecture.md, "Jobs").

Run by beat every ``JOB_DISPATCH_INTERVAL`` seconds (and by the embedded server's own loop). It
compares the job rows — the truth — with what the broker holds:

- a **running** job whose lease expired lost its worker (SIGKILL, OOM, power loss): a job with
  a cancel request ends ``canceled``; a job of a kind that can run again, with attempts left
  (``JOB_MAX_ATTEMPTS``), goes back to ``queued`` and its task is published again; any other
  fails ``worker_lost``;
- a **queued** job whose message is in no queue and held by no worker (a broker restarted
  without persistence) gets its task published again, once it has been waiting
  ``JOB_REPUBLISH_AFTER_SECONDS``. Duplicate messages are harmless: only one worker can claim;
- a **queued** job whose task was never recorded (the process stopped between the commit and
  the publish) fails ``queue_lost`` after ``JOB_UNPUBLISHED_FAIL_SECONDS``: nothing could run it.

Which messages the broker holds is read from Redis (the queue lists, every priority, and the
``unacked`` hash where kombu keeps messages workers have taken; see kombu's Redis transport).
The in-memory transport of the embedded server cannot lose a message while the process lives,
so there only expired leases are acted on, and at start everything unfinished counts as lost.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import Job
from .services import job_fail, job_mark_canceled, job_republish, job_save

log = logging.getLogger(__name__)

# Kinds whose work must not run twice (a paid remote call...): failed ``worker_lost`` instead
# of re-queued when their worker dies. Registered by the apps (``job_kind_no_rerun``).
_NO_RERUN: set[str] = set()


def job_kind_no_rerun(kind: str) -> None:
    """Declare that jobs of ``kind`` are failed ``worker_lost`` rather than re-run when their
    worker dies mid-way."""
    _NO_RERUN.add(kind)


def broker_task_ids(queues) -> set[str] | None:
    """Task ids of every message the broker holds for ``queues`` (waiting or taken by a
    worker), or ``None`` when the transport cannot be inspected (in-memory) or is down."""
    from celery import current_app

    try:
        with current_app.connection_for_read() as conn:
            channel = conn.default_channel
            client = getattr(channel, "client", None)
            if client is None or not hasattr(channel, "_q_for_pri"):
                return None
            keys = [channel._q_for_pri(q, pri) for q in queues
                    for pri in channel.priority_steps]
            raw = []
            for key in dict.fromkeys(keys):
                raw.extend(client.lrange(key, 0, -1))
            # Taken by a worker within the lease time: that worker may still run it; an
            # older entry belongs to a dead worker (kombu restores it only after the
            # visibility timeout, an hour).
            fresh = client.zrangebyscore(channel.unacked_index_key,
                                         time.time() - float(settings.JOB_LEASE_SECONDS), "+inf")
            if fresh:
                raw.extend(p for p in client.hmget(channel.unacked_key, fresh) if p)
    except Exception as exc:  # noqa: BLE001 - a broker that is down: try on the next run
        log.warning("dispatcher: cannot read the broker: %s", exc)
        return None
    ids = set()
    for item in raw:
        try:
            message = json.loads(item)
            if isinstance(message, list):  # unacked entries are [message, exchange, key]
                message = message[0]
            ids.add(message["headers"]["id"])
        except (ValueError, KeyError, TypeError, IndexError):
            continue
    return ids


def _reclaim_expired(now, *, everything: bool = False) -> dict:
    counts = {"requeued": 0, "failed": 0, "canceled": 0}
    expired = Job.objects.filter(status=Job.Status.RUNNING)
    if not everything:
        expired = expired.filter(lease_expires_at__lt=now)
    for pk in list(expired.values_list("pk", flat=True)):
        with transaction.atomic():
            job = Job.objects.select_for_update(skip_locked=True).filter(
                pk=pk, status=Job.Status.RUNNING).first()
            if job is None or (not everything and (job.lease_expires_at is None
                                                   or job.lease_expires_at >= now)):
                continue
            if job.cancel_requested:
                job_mark_canceled(job=job, message="Canceled; its worker had stopped.")
                counts["canceled"] += 1
            elif (job.kind in _NO_RERUN or not job.task_name
                  or job.attempts >= settings.JOB_MAX_ATTEMPTS):
                job_fail(job=job, code="worker_lost",
                         message=f"The worker running this job stopped (attempt "
                                 f"{job.attempts} of {settings.JOB_MAX_ATTEMPTS}); start it "
                                 "again.")
                counts["failed"] += 1
            else:
                job.status, job.worker, job.lease_expires_at = Job.Status.QUEUED, "", None
                job.message = "Its worker stopped; queued again."
                job_save(job=job, fields=["status", "worker", "lease_expires_at", "message"])
                if not everything:  # after a restart, _republish_lost publishes every queued job
                    transaction.on_commit(lambda job=job: job_republish(job=job))
                counts["requeued"] += 1
    return counts


def _republish_lost(now, *, everything: bool = False) -> int:
    waiting = Job.objects.filter(status=Job.Status.QUEUED, cancel_requested=False).exclude(
        task_name="")
    if not everything:
        waiting = waiting.filter(published_at__lt=now - timedelta(
            seconds=settings.JOB_REPUBLISH_AFTER_SECONDS))
    waiting = list(waiting.order_by("created_at")[:settings.JOB_DISPATCH_BATCH])
    if not waiting:
        return 0
    held = set() if everything else broker_task_ids({j.queue or "default" for j in waiting})
    if held is None:
        return 0
    count = 0
    for job in waiting:
        if job.celery_task_id and job.celery_task_id in held:
            continue
        if job_republish(job=job):
            count += 1
    return count


def _fail_never_published(now, *, everything: bool = False) -> int:
    """Fail queued jobs whose task was never recorded (the process stopped between the commit
    that created the job and the publish): nothing can run them, so they end now instead of
    waiting forever; a client's retry with the same Idempotency-Key runs again."""
    orphans = Job.objects.filter(status=Job.Status.QUEUED, task_name="", published_at=None)
    if not everything:
        orphans = orphans.filter(created_at__lt=now - timedelta(
            seconds=settings.JOB_UNPUBLISHED_FAIL_SECONDS))
    count = 0
    for job in orphans[:settings.JOB_DISPATCH_BATCH]:
        with transaction.atomic():
            job = Job.objects.select_for_update(skip_locked=True).filter(
                pk=job.pk, status=Job.Status.QUEUED, task_name="").first()
            if job is None:
                continue
            job_fail(job=job, code="queue_lost", message="The job was accepted but its task "
                     "was never queued (the server stopped at that moment); start it again.")
            count += 1
    return count


def jobs_dispatch(*, after_restart: bool = False) -> dict:
    """One dispatcher pass (see the module doc). ``after_restart=True`` (the embedded server at
    start, whose in-memory broker forgot everything) treats every running job as lost and
    every queued job's message as gone.

    Returns counts: ``{"requeued", "failed", "canceled", "republished", "never_published"}``.
    """
    now = timezone.now()
    counts = _reclaim_expired(now, everything=after_restart)
    counts["republished"] = _republish_lost(now, everything=after_restart)
    counts["never_published"] = _fail_never_published(now, everything=after_restart)
    if any(counts.values()):
        log.info("dispatcher: %s", ", ".join(f"{k} {v}" for k, v in counts.items() if v))
    return counts


class DispatcherLoop:
    """Runs :func:`jobs_dispatch` every ``interval`` seconds (``JOB_DISPATCH_INTERVAL``) in a
    daemon thread until :meth:`stop` — the embedded server's dispatcher, and the body of
    ``manage.py dispatch_jobs``. An error in one pass (the database away) is logged and the
    next pass runs as usual."""

    def __init__(self, interval: float | None = None):
        import threading

        self.interval = float(settings.JOB_DISPATCH_INTERVAL if interval is None else interval)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.run, daemon=True, name="job-dispatcher")

    def start(self) -> DispatcherLoop:
        self._thread.start()
        return self

    def run(self) -> None:
        from django.db import close_old_connections, connection

        try:
            while not self._stop.wait(self.interval):
                try:
                    close_old_connections()
                    jobs_dispatch()
                except Exception:  # noqa: BLE001 - the loop must outlive a bad pass
                    log.exception("dispatcher pass failed")
                    connection.close()
        finally:
            connection.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)
