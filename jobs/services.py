"""Job lifecycle transitions. Every write to a Job goes through here and is pushed to clients.

Lifecycle: ``queued -> running -> (succeeded | failed | canceled)``.
"""

from __future__ import annotations

import logging

from django.db import models, transaction
from django.utils import timezone

from core.exceptions import ApplicationError

from .events import job_group, send_to_groups, user_group
from .models import Job
from .snapshots import job_snapshot

log = logging.getLogger(__name__)


def job_publish(*, job: Job) -> None:
    """Push the current snapshot of ``job`` to its groups (after the transaction commits)."""
    snapshot = job_snapshot(job)
    groups = [job_group(job.id)]
    if job.user_id:
        groups.append(user_group(job.user_id))
    message = {"type": "job.update", "job": snapshot}
    transaction.on_commit(lambda: send_to_groups(groups, message))


def job_save(*, job: Job, fields: list[str]) -> Job:
    """Write ``fields`` of ``job``, bump its ``seq``, and publish the new snapshot."""
    job.seq += 1
    job.save(update_fields=[*fields, "seq"])
    job_publish(job=job)
    return job


def job_create(*, kind: str, user=None, total_steps: int = 0, message: str = "",
               celery_task_id: str = "") -> Job:
    """Create a queued job. Call inside the transaction that creates the domain row."""
    job = Job.objects.create(kind=kind, user=user, total_steps=total_steps, message=message,
                             celery_task_id=celery_task_id)
    job_publish(job=job)
    return job


def job_start(*, job: Job, total_steps: int | None = None, message: str = "") -> Job:
    """Mark ``job`` running (a re-delivered job restarts from step 0)."""
    job.status = Job.Status.RUNNING
    job.started_at = timezone.now()
    job.step = 0
    job.progress = 0.0
    job.message = message
    if total_steps is not None:
        job.total_steps = total_steps
    return job_save(job=job, fields=["status", "started_at", "step", "progress", "message",
                                     "total_steps"])


def job_succeed(*, job: Job, result: dict, message: str = "") -> Job:
    """Finish ``job`` successfully with a JSON ``result``."""
    job.status = Job.Status.SUCCEEDED
    job.progress = 1.0
    job.step = job.total_steps or job.step
    job.eta_seconds = 0.0
    job.result = result
    job.message = message
    job.finished_at = timezone.now()
    return job_save(job=job, fields=["status", "progress", "step", "eta_seconds", "result",
                                     "message", "finished_at"])


def job_fail(*, job: Job, code: str, message: str) -> Job:
    """Finish ``job`` as failed with an error ``code`` and a human ``message``."""
    job.status = Job.Status.FAILED
    job.error_code = code
    job.error_message = message[:5000]
    job.eta_seconds = None
    job.finished_at = timezone.now()
    return job_save(job=job, fields=["status", "error_code", "error_message", "eta_seconds",
                                     "finished_at"])


def job_fail_unexpected(*, job: Job, exc: BaseException, code: str = "internal_error") -> Job:
    """Log ``exc`` (an unexpected error: a bug, the database) with its traceback and fail
    ``job`` with ``code`` and the exception's type and text; a job never stays running."""
    log.error("%s job %s failed", job.kind, job.pk, exc_info=exc)
    return job_fail(job=job, code=code, message=f"{type(exc).__name__}: {exc}")


def job_mark_canceled(*, job: Job, message: str = "Canceled.") -> Job:
    """Finish ``job`` as canceled (called by the work when it sees the cancel flag)."""
    job.status = Job.Status.CANCELED
    job.message = message
    job.eta_seconds = None
    job.finished_at = timezone.now()
    return job_save(job=job, fields=["status", "message", "eta_seconds", "finished_at"])


@transaction.atomic
def job_cancel(*, job: Job) -> Job:
    """Ask ``job`` to stop.

    A queued job is canceled at once (its task will find it canceled and do nothing); a running
    job gets ``cancel_requested`` and stops at its next step.

    Raises:
        ApplicationError: 409 ``job_finished`` when the job already ended.
    """
    job = Job.objects.select_for_update().get(pk=job.pk)
    if job.is_finished:
        raise ApplicationError("job_finished", f"The job is already {job.status}.", status=409)
    Job.objects.filter(pk=job.pk).update(cancel_requested=True)
    job.cancel_requested = True
    if job.status == Job.Status.QUEUED:
        return job_mark_canceled(job=job)
    job_publish(job=job)
    return job


def jobs_reap(*, older_than_seconds: float, statuses=(Job.Status.RUNNING,),
              code: str = "worker_lost", message: str = "") -> int:
    """Fail jobs left in ``statuses`` whose work cannot still be going on.

    A job running for longer than ``older_than_seconds`` (seconds since it started, or since
    it was created when it never started) outlived the task time limit, so its worker died;
    with ``older_than_seconds=0`` every job in ``statuses`` is failed (the embedded server does
    this at start: its in-memory broker lost whatever was queued or running before).

    Returns the number of jobs failed; each one is pushed to its clients.
    """
    from datetime import timedelta

    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    stale = Job.objects.filter(status__in=list(statuses)).filter(
        models.Q(started_at__lt=cutoff) | models.Q(started_at__isnull=True, created_at__lt=cutoff)
        if older_than_seconds else models.Q())
    count = 0
    for job in stale:
        job_fail(job=job, code=code, message=message or
                 "The worker running this job stopped before it finished; start it again.")
        count += 1
    return count
