"""Claims and leases: a worker owns a running job only while its lease lasts.

The database row is the truth and the broker only a doorbell (docs/architecture.md, "Jobs").
A worker takes a job with one conditional UPDATE (``queued -> running``), which gives it a
fresh ``worker`` token and a lease (``lease_expires_at``) of ``JOB_LEASE_SECONDS`` seconds.
A heartbeat thread renews the lease every ``JOB_HEARTBEAT_SECONDS`` seconds while the work
runs. Every later write of that job by the worker is conditional on the token (see
``jobs.services.job_save``): once the dispatcher has given the job to another worker (or
ended it) because the lease expired, the old worker's writes raise :class:`JobLeaseLost` and
its transaction — images included — rolls back, so a job never produces its result twice.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import connection, models
from django.utils import timezone

from .models import Job

log = logging.getLogger(__name__)


class JobLeaseLost(Exception):
    """The worker no longer owns the job (its lease expired and the dispatcher re-queued,
    failed or canceled it): stop, write nothing more."""


def lease_seconds() -> float:
    """The lease length in seconds (``JOB_LEASE_SECONDS``)."""
    return float(settings.JOB_LEASE_SECONDS)


def _worker_token() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def job_claim(*, job_id, total_steps: int | None = None, message: str = "") -> Job | None:
    """Take queued job ``job_id`` for this worker: ``queued -> running`` in one conditional
    UPDATE, ``attempts + 1``, a new worker token and a lease of ``JOB_LEASE_SECONDS``.

    Returns the running job (its ``lease_token`` attribute set: later writes are conditional
    on it), or ``None`` when the job is not queued any more (another worker has it, it is
    paused or finished) or a cancel was requested (then it is marked canceled here).
    """
    from .services import job_mark_canceled, job_publish

    token = _worker_token()
    now = timezone.now()
    fields = {"status": Job.Status.RUNNING, "started_at": now, "step": 0, "progress": 0.0,
              "eta_seconds": None, "message": message, "worker": token,
              "lease_expires_at": now + timedelta(seconds=lease_seconds()),
              "attempts": models.F("attempts") + 1, "seq": models.F("seq") + 1}
    if total_steps is not None:
        fields["total_steps"] = total_steps
    claimed = Job.objects.filter(pk=job_id, status=Job.Status.QUEUED,
                                 cancel_requested=False).update(**fields)
    job = Job.objects.get(pk=job_id)
    if not claimed:
        if job.status == Job.Status.QUEUED and job.cancel_requested:
            job_mark_canceled(job=job)
        return None
    job.lease_token = token
    job_publish(job=job)
    return job


def job_release(*, job: Job) -> None:
    """Forget ``job``'s lease token (the job ended, or was handed back to the queue)."""
    job.__dict__.pop("lease_token", None)


class Heartbeat:
    """Renews the lease of a claimed job from a daemon thread until :meth:`stop`.

    A lease is only renewed where other connections can see the claim: when the claim was
    written inside an open transaction (a test that wraps everything in one), no heartbeat
    thread starts — nobody else could take the job over anyway.

    ``lost`` becomes True when a renewal found the job no longer ours.
    """

    def __init__(self, job: Job):
        self.job = job
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Heartbeat:
        if getattr(self.job, "lease_token", None) and not connection.in_atomic_block:
            self._thread = threading.Thread(target=self._run, daemon=True,
                                            name=f"lease-{self.job.pk}")
            self._thread.start()
        return self

    def _run(self) -> None:
        from django.db import DatabaseError, close_old_connections

        interval = float(settings.JOB_HEARTBEAT_SECONDS)
        try:
            while not self._stop.wait(interval):
                try:
                    renewed = Job.objects.filter(
                        pk=self.job.pk, worker=self.job.lease_token,
                        status__in=[Job.Status.RUNNING],
                    ).update(lease_expires_at=timezone.now()
                             + timedelta(seconds=lease_seconds()))
                except DatabaseError as exc:  # the database is away: try again next beat
                    log.warning("lease renewal of job %s failed: %s", self.job.pk, exc)
                    close_old_connections()
                    continue
                if not renewed:
                    self.lost = True
                    return
        finally:
            connection.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
