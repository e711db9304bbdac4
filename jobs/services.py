"""Job lifecycle transitions. Every write to a Job goes through here and is pushed to clients.

Lifecycle: ``queued -> running -> (succeeded | failed | canceled)``.
"""

from __future__ import annotations

import logging
import uuid

from django.db import IntegrityError, models, transaction
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
    """Write ``fields`` of ``job``, bump its ``seq``, and publish the new snapshot.

    A job claimed by this worker (``job.lease_token`` set by ``jobs.lease.job_claim``) is
    written only while the worker still owns it: the UPDATE is conditional on the token and
    on ``running``/``paused``.

    Raises:
        jobs.lease.JobLeaseLost: the lease expired and the job was given away or ended.
    """
    job.seq += 1
    token = getattr(job, "lease_token", None)
    if token:
        from .lease import JobLeaseLost

        values = {name: getattr(job, name) for name in fields}
        written = Job.objects.filter(pk=job.pk, worker=token, status__in=[
            Job.Status.RUNNING, Job.Status.PAUSED]).update(seq=models.F("seq") + 1, **values)
        if not written:
            raise JobLeaseLost(f"job {job.pk} is no longer owned by this worker")
        if job.is_finished or job.status == Job.Status.QUEUED:
            job.__dict__.pop("lease_token", None)
    else:
        job.save(update_fields=[*fields, "seq"])
    job_publish(job=job)
    return job


def job_create(*, kind: str, user=None, total_steps: int = 0, message: str = "",
               celery_task_id: str = "", exclusive: bool = False) -> Job:
    """Create a queued job. Call inside the transaction that creates the domain row."""
    job = Job.objects.create(kind=kind, user=user, total_steps=total_steps, message=message,
                             celery_task_id=celery_task_id, exclusive=exclusive)
    job_publish(job=job)
    return job


ACTIVE_STATUSES = (Job.Status.QUEUED, Job.Status.RUNNING, Job.Status.PAUSED)


def job_create_exclusive(*, kind: str, user=None, what: str, total_steps: int = 0,
                         message: str = "Queued", result: dict | None = None, task=None,
                         queue: str = "default", extra_args: tuple = ()) -> Job:
    """Create a queued job of ``kind`` unless one is already queued, running or paused — the
    one way to start work that must not run twice at once (a scan, auto-organize ...). The
    database decides races: a partial unique constraint allows one active exclusive job per
    kind (on PostgreSQL a row lock cannot, as there is no row to lock yet). ``what`` names the
    work for the error ("A library scan"). With ``task``, the job is enqueued
    (:func:`job_enqueue`) in the same transaction with the arguments ``[job id, *extra_args]``
    on ``queue``.

    Raises:
        ApplicationError: 409 ``job_running``, with ``fields.job`` the active job's id; 503
            ``broker_unavailable``.
    """
    def refuse(active_id):
        return ApplicationError(
            "job_running", f"{what} is already running; wait for it or cancel it.",
            status=409, fields={"job": [str(active_id)]})

    active = Job.objects.filter(kind=kind, status__in=ACTIVE_STATUSES)
    try:
        with transaction.atomic():
            first = active.values_list("pk", flat=True).first()
            if first is not None:
                raise refuse(first)
            job = job_create(kind=kind, user=user, total_steps=total_steps, message=message,
                             celery_task_id=str(uuid.uuid4()), exclusive=True)
            if result is not None:
                job.result = result
                job.save(update_fields=["result"])
            if task is not None:
                job_enqueue(job=job, task=task, args=[str(job.pk), *extra_args], queue=queue)
    except IntegrityError:  # a concurrent start won the one_active_exclusive_job_per_kind race
        raise refuse(active.values_list("pk", flat=True).first() or "") from None
    return job


def job_succeed(*, job: Job, result: dict, message: str = "") -> Job:
    """Finish ``job`` successfully with a JSON ``result``."""
    job.status = Job.Status.SUCCEEDED
    job.progress = 1.0
    job.step = job.total_steps or job.step
    job.eta_seconds = 0.0
    job.result = result
    job.message = message
    job.finished_at = timezone.now()
    job.lease_expires_at = None
    return job_save(job=job, fields=["status", "progress", "step", "eta_seconds", "result",
                                     "message", "finished_at", "lease_expires_at"])


def job_fail(*, job: Job, code: str, message: str) -> Job:
    """Finish ``job`` as failed with an error ``code`` and a human ``message``."""
    job.status = Job.Status.FAILED
    job.error_code = code
    job.error_message = message[:5000]
    job.eta_seconds = None
    job.finished_at = timezone.now()
    job.lease_expires_at = None
    return job_save(job=job, fields=["status", "error_code", "error_message", "eta_seconds",
                                     "finished_at", "lease_expires_at"])


DB_RETRY_SECONDS = 30.0  # how long job_fail_unexpected keeps trying to reach the database


def job_fail_unexpected(*, job: Job, exc: BaseException, code: str = "internal_error") -> Job:
    """Log ``exc`` (an unexpected error: a bug, the database) with its traceback and fail
    ``job`` with ``code`` and the exception's type and text; a job never stays running.

    When ``exc`` came from the database going away (a PostgreSQL restart), writing the failure
    fails too: the broken connection is closed and the write retried, once a second, for up
    to ``DB_RETRY_SECONDS`` seconds (outside a transaction only); then the error is raised and
    the reaper fails the job later.
    """
    import time

    from django.db import DatabaseError, connection

    log.error("%s job %s failed", job.kind, job.pk, exc_info=exc)
    message = f"{type(exc).__name__}: {exc}"
    deadline = time.monotonic() + DB_RETRY_SECONDS
    while True:
        try:
            return job_fail(job=job, code=code, message=message)
        except DatabaseError:
            if connection.in_atomic_block or time.monotonic() > deadline:
                raise
            log.warning("database unreachable while failing job %s; retrying", job.pk)
            connection.close()
            time.sleep(1.0)


def job_mark_canceled(*, job: Job, message: str = "Canceled.") -> Job:
    """Finish ``job`` as canceled (called by the work when it sees the cancel flag)."""
    job.status = Job.Status.CANCELED
    job.message = message
    job.eta_seconds = None
    job.finished_at = timezone.now()
    job.lease_expires_at = None
    return job_save(job=job, fields=["status", "message", "eta_seconds", "finished_at",
                                     "lease_expires_at"])


BROKER_ERRORS: tuple[type[BaseException], ...] = (OSError,)
try:  # kombu wraps transport errors; redis-py raises its own ConnectionError (not an OSError)
    from kombu.exceptions import OperationalError as _KombuOperationalError
    from redis.exceptions import ConnectionError as _RedisConnectionError
    from redis.exceptions import TimeoutError as _RedisTimeoutError

    BROKER_ERRORS = (OSError, _KombuOperationalError, _RedisConnectionError, _RedisTimeoutError)
except ImportError:  # pragma: no cover - kombu and redis are dependencies
    pass


def job_enqueue(*, job: Job, task, args: list, queue: str, countdown: float | None = None
                ) -> None:
    """Publish ``task`` with ``args`` on ``queue`` (task id ``job.celery_task_id``).

    What to publish is recorded on the job first (``task_name``, ``task_args``, ``queue``), so
    the dispatcher can publish it again when the broker loses the message. Call it inside the
    transaction that creates ``job``: the record commits with the job (a process that dies
    right after the commit leaves a job the dispatcher can still run), and the publish runs
    when the transaction commits; its error still propagates to the caller (a non-robust
    ``on_commit`` callback), so the HTTP answer is the 503. Outside a transaction both happen
    at once. When the broker cannot be reached within ``CELERY_BROKER_CONNECTION_TIMEOUT`` and
    the publish retry policy (seconds, see settings "reliability (#7)"), ``job`` is failed with
    ``broker_unavailable`` so no job waits forever for a message that was never sent.

    Raises:
        ApplicationError: 503 ``broker_unavailable`` when the publish failed.
    """
    _job_record_task(job=job, task_name=task.name, args=args, queue=queue, countdown=countdown)
    transaction.on_commit(lambda: _job_send(job=job, countdown=countdown))


def _job_record_task(*, job: Job, task_name: str, args: list, queue: str,
                     countdown: float | None = None) -> None:
    from datetime import timedelta

    job.task_name, job.task_args, job.queue = task_name, list(args), queue
    job.published_at = timezone.now() + timedelta(seconds=countdown or 0)
    Job.objects.filter(pk=job.pk).update(task_name=task_name, task_args=job.task_args,
                                         queue=queue, published_at=job.published_at)


def _job_send(*, job: Job, countdown: float | None = None, fail_job: bool = True) -> None:
    """Publish the task recorded on ``job``; a dead broker fails the job (when ``fail_job``)
    and raises 503 ``broker_unavailable``."""
    from celery import current_app as app

    try:
        app.send_task(job.task_name, args=job.task_args, queue=job.queue or "default",
                      task_id=job.celery_task_id or None, countdown=countdown or None)
    except BROKER_ERRORS as exc:
        log.warning("could not publish %s for job %s: %s", job.task_name, job.pk, exc)
        if fail_job:
            job_fail(job=job, code="broker_unavailable",
                     message=f"The task queue (broker) could not be reached: {exc}")
        raise ApplicationError(
            "broker_unavailable",
            "The task queue is unreachable; the job was not started. Try again shortly.",
            status=503) from exc


def _job_publish_task(*, job: Job, task_name: str, args: list, queue: str,
                      countdown: float | None = None, fail_job: bool = True) -> None:
    """Record what to publish for ``job``, then publish it (see :func:`job_enqueue`)."""
    _job_record_task(job=job, task_name=task_name, args=args, queue=queue, countdown=countdown)
    _job_send(job=job, countdown=countdown, fail_job=fail_job)


def job_republish(*, job: Job) -> bool:
    """Publish the task of queued ``job`` again (its message was lost). Returns False when
    the broker is unreachable (the dispatcher tries again on its next run) or the job has no
    recorded task."""
    if not job.task_name:
        return False
    try:
        _job_publish_task(job=job, task_name=job.task_name, args=job.task_args,
                          queue=job.queue or "default", fail_job=False)
    except ApplicationError:
        return False
    return True


@transaction.atomic
def job_cancel(*, job: Job) -> Job:
    """Ask ``job`` to stop.

    A queued or paused job is canceled at once (its task will find it canceled and do
    nothing); so is a running job whose worker is dead (its lease expired). A running job with
    a live worker gets ``cancel_requested`` and stops at its next step.

    Raises:
        ApplicationError: 409 ``job_finished`` when the job already ended.
    """
    job = Job.objects.select_for_update().get(pk=job.pk)
    if job.is_finished:
        raise ApplicationError("job_finished", f"The job is already {job.status}.", status=409)
    Job.objects.filter(pk=job.pk).update(cancel_requested=True)
    job.cancel_requested = True
    if job.status in (Job.Status.QUEUED, Job.Status.PAUSED):
        return job_mark_canceled(job=job)
    if job.lease_expires_at is not None and job.lease_expires_at < timezone.now():
        return job_mark_canceled(job=job, message="Canceled; its worker had stopped.")
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


# ----------------------------------------------------------------------------- pause / resume
_RESUMERS: dict = {}


def job_register_resumer(*, kind: str, resume) -> None:
    """Declare jobs of ``kind`` pausable; ``resume(job)`` enqueues the work of a paused job
    again (called after the commit that set it back to ``queued``). Work of such a kind checks
    ``pause_requested`` between steps and ends its task with status ``paused``."""
    _RESUMERS[kind] = resume


@transaction.atomic
def job_pause(*, job: Job) -> Job:
    """Ask ``job`` to pause: a queued job is paused at once, a running one at its next step.

    Raises:
        ApplicationError: 409 ``job_finished``; 400 ``job_not_pausable`` for kinds without a
            registered resumer.
    """
    job = Job.objects.select_for_update().get(pk=job.pk)
    if job.is_finished:
        raise ApplicationError("job_finished", f"The job is already {job.status}.", status=409)
    if job.kind not in _RESUMERS:
        raise ApplicationError("job_not_pausable", f"{job.kind} jobs cannot be paused.")
    if job.status == Job.Status.PAUSED:
        return job
    job.pause_requested = True
    fields = ["pause_requested"]
    if job.status == Job.Status.QUEUED:
        job.status, job.message = Job.Status.PAUSED, "Paused"
        fields += ["status", "message"]
    return job_save(job=job, fields=fields)


@transaction.atomic
def job_resume(*, job: Job, enqueue: bool = True) -> Job:
    """Resume a paused ``job`` (queued again; its resumer enqueues it after commit), or drop a
    pause request a running job has not reached yet.

    Raises:
        ApplicationError: 409 ``job_finished``; 400 ``job_not_pausable`` / ``job_not_paused``.
    """
    job = Job.objects.select_for_update().get(pk=job.pk)
    if job.is_finished:
        raise ApplicationError("job_finished", f"The job is already {job.status}.", status=409)
    resume = _RESUMERS.get(job.kind)
    if resume is None:
        raise ApplicationError("job_not_pausable", f"{job.kind} jobs cannot be paused.")
    if job.status != Job.Status.PAUSED and not job.pause_requested:
        raise ApplicationError("job_not_paused", "The job is not paused.")
    job.pause_requested = False
    fields = ["pause_requested"]
    if job.status == Job.Status.PAUSED:
        job.status, job.message = Job.Status.QUEUED, "Resuming"
        fields += ["status", "message"]
        if enqueue:
            transaction.on_commit(lambda: resume(job))
    return job_save(job=job, fields=fields)
