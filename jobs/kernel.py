"""The run protocol every long operation uses (docs/architecture.md, "Jobs").

A task loads its job by id and hands its domain loop to :func:`job_run`, which does the rest
the same way for every kind of work:

1. skip a job that is finished, paused or taken by another worker (a re-delivered message does
   no harm); a job canceled while queued ends ``canceled`` without running;
2. optionally ask a ``gate`` whether the work may start now (a download waits for a slot): the
   job stays queued and its task is published again after the delay the gate returns;
3. claim the job (``queued -> running``, a lease renewed by a heartbeat thread);
4. run ``work(run)``, where ``run`` is a :class:`JobRun` (progress reporter, cancel and pause
   checks); the work returns ``(result, message)`` to succeed, or raises
   :class:`JobCanceled`, :class:`JobPaused` or :class:`JobRequeued`;
5. turn every error into an ended job: ``ApplicationError`` and any error with ``code`` and
   ``message`` attributes (``ProviderError``, ``CivitaiError``) fail with that code; a mapping
   passed as ``errors`` gives other exceptions their code and message (``OSError`` ->
   ``storage_error`` ...); anything else fails ``fail_code`` with the traceback logged. A
   lost lease (:class:`jobs.lease.JobLeaseLost`) writes nothing: another worker owns the job.
   A database connection lost mid-run (``OperationalError``/``InterfaceError``) writes
   nothing either: the lease runs out and the dispatcher queues the job again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import InterfaceError, OperationalError, connection, transaction

from core.exceptions import ApplicationError

from .lease import Heartbeat, JobLeaseLost, job_claim, job_release
from .models import Job
from .progress import ProgressReporter
from .services import (
    job_fail,
    job_fail_unexpected,
    job_mark_canceled,
    job_save,
    job_succeed,
)

log = logging.getLogger(__name__)


class JobCanceled(Exception):  # noqa: N818 - a signal, not an error
    """Raised by work that saw the cancel flag: the job ends ``canceled`` with ``message``;
    ``result`` (the partial report) is kept when given."""

    def __init__(self, message: str = "Canceled.", *, result: dict | None = None):
        super().__init__(message)
        self.message, self.result = message, result


class JobPaused(Exception):  # noqa: N818 - a signal, not an error
    """Raised by pausable work that saw the pause flag: the job ends its task ``paused``
    (``result`` kept when given); ``jobs.services.job_resume`` queues it again."""

    def __init__(self, message: str = "Paused", *, result: dict | None = None):
        super().__init__(message)
        self.message, self.result = message, result


class _DatabaseGone(Exception):  # noqa: N818 - internal signal
    """The database connection broke during the work (a restart, a network cut)."""


class JobRequeued(Exception):  # noqa: N818 - a signal, not an error
    """Raised by work that cannot go on now: the job goes back to ``queued`` and its task is
    published again after ``countdown`` seconds."""

    def __init__(self, message: str, *, countdown: float = 0.0):
        super().__init__(message)
        self.message, self.countdown = message, countdown


ErrorMap = dict[type[BaseException], Callable[[BaseException], tuple[str, str]]]


@dataclass
class JobRun:
    """What the work of a claimed job gets: the job, its progress reporter and the flags.

    Attributes:
        job: the running job (claimed by this worker).
        reporter: a :class:`jobs.progress.ProgressReporter` (``step``, ``preview``).
    """

    job: Job
    reporter: ProgressReporter
    heartbeat: Heartbeat = field(repr=False)

    def step(self, step: int, total_steps: int, message: str = "") -> None:
        """Report ``step`` of ``total_steps`` done (throttled; see ``ProgressReporter``)."""
        self.reporter.step(step, total_steps, message)

    def should_cancel(self) -> bool:
        """True when a cancel was requested — or the lease was lost: stop either way."""
        return self.reporter.should_cancel()

    def should_pause(self) -> bool:
        """True when a pause was requested (one indexed read)."""
        return Job.objects.filter(pk=self.job.pk, pause_requested=True).exists()

    def save_result(self, result: dict) -> None:
        """Store a partial ``result`` now (what a resumed or canceled run keeps)."""
        self.job.result = result
        job_save(job=self.job, fields=["result"])


def _error_code_message(exc: BaseException, errors: ErrorMap | None) -> tuple[str, str] | None:
    for kind, describe in (errors or {}).items():
        if isinstance(exc, kind):
            return describe(exc)
    if isinstance(exc, ApplicationError) or (
            isinstance(getattr(exc, "code", None), str)
            and isinstance(getattr(exc, "message", None), str)):
        return exc.code, exc.message
    return None


def _job_requeue(*, job: Job, message: str, countdown: float) -> Job:
    """Hand a claimed ``job`` back to the queue and publish its task after ``countdown`` s."""
    job.status, job.message, job.worker, job.lease_expires_at = (
        Job.Status.QUEUED, message, "", None)
    job_save(job=job, fields=["status", "message", "worker", "lease_expires_at"])
    job_release(job=job)
    transaction.on_commit(lambda: _republish_later(job, countdown))
    return job


def _republish_later(job: Job, countdown: float) -> None:
    from .services import _job_publish_task

    try:
        _job_publish_task(job=job, task_name=job.task_name, args=job.task_args,
                          queue=job.queue or "default", countdown=countdown, fail_job=False)
    except ApplicationError:  # the dispatcher publishes it again once the broker is back
        log.warning("could not re-publish job %s; the dispatcher will", job.pk)


def job_run(*, job_id, work: Callable[[JobRun], tuple[dict, str] | Job],
            total_steps: int | None = None, message: str = "",
            gate: Callable[[Job], tuple[float, str] | None] | None = None,
            errors: ErrorMap | None = None, fail_code: str = "internal_error",
            on_failure: Callable[[], None] | None = None,
            listener: Callable[[int, int], None] | None = None) -> Job:
    """Run job ``job_id`` through the protocol described in the module doc.

    Args:
        job_id: the job's uuid (or a :class:`Job`).
        work: ``work(run) -> (result dict, message)``; or it ends the job itself and returns it.
        total_steps, message: what the snapshot says once the job is claimed.
        gate: ``gate(job) -> None`` to start now, or ``(seconds, message)`` to wait that long
            in the queue (checked in one transaction with the claim).
        errors: exception type -> ``describe(exc) -> (code, message)`` for expected failures.
        fail_code: the error code of an unexpected exception (``internal_error``).
        on_failure: called (before the failure is written) when the work raised, or when the
            lease was lost, e.g. to remove files it wrote.
        listener: an unthrottled ``listener(step, total)`` (a CLI progress bar).

    Returns the job as the protocol left it; never raises for the work's errors.
    """
    job_pk = getattr(job_id, "pk", job_id)
    job = Job.objects.get(pk=job_pk)
    if job.is_finished or job.status != Job.Status.QUEUED:
        return job  # finished, paused, or running on another worker: a duplicate message
    if job.cancel_requested:
        return job_mark_canceled(job=job)
    with transaction.atomic():
        wait = gate(job) if gate else None
        claimed = None if wait else job_claim(job_id=job_pk, total_steps=total_steps,
                                              message=message)
    if wait:
        delay, wait_message = wait
        if job.message != wait_message:
            job.message = wait_message
            job_save(job=job, fields=["message"])
        _republish_later(job, delay)
        return job
    if claimed is None:
        return Job.objects.get(pk=job_pk)
    job = claimed
    heartbeat = Heartbeat(job).start()
    run = JobRun(job=job, reporter=ProgressReporter(job, listener=listener,
                                                    lease_lost=lambda: heartbeat.lost),
                 heartbeat=heartbeat)
    try:
        return _job_run_claimed(run=run, work=work, errors=errors, fail_code=fail_code,
                                on_failure=on_failure)
    except JobLeaseLost:
        log.warning("job %s: lease lost, another worker owns it now; result dropped", job.pk)
        return Job.objects.get(pk=job_pk)
    except _DatabaseGone as gone:
        # The database went away mid-run: nothing can be written now. The lease stops being
        # renewed, so the dispatcher queues the job again once the database is back.
        log.warning("job %s: database unreachable (%s); the dispatcher will run it again",
                    job.pk, gone.__cause__)
        return job
    finally:
        heartbeat.stop()
        job_release(job=job)


def _cleanup(job: Job, on_failure) -> None:
    if on_failure is not None:
        try:
            on_failure()
        except Exception:  # noqa: BLE001 - the failure being reported matters more
            log.exception("cleanup of job %s failed", job.pk)


def _job_run_claimed(*, run: JobRun, work, errors, fail_code, on_failure) -> Job:
    job = run.job
    try:
        outcome = work(run)
        if isinstance(outcome, Job):
            return outcome
        result, done_message = outcome
        return job_succeed(job=job, result=result, message=done_message)
    except JobLeaseLost:
        _cleanup(job, on_failure)  # another worker owns the job: drop what this run wrote
        raise
    except (OperationalError, InterfaceError) as exc:  # the connection, not the data
        _cleanup(job, on_failure)
        connection.close()
        raise _DatabaseGone() from exc
    except JobCanceled as stop:
        if stop.result is not None:
            run.save_result(stop.result)
        return job_mark_canceled(job=job, message=stop.message)
    except JobPaused as stop:
        job.status, job.message, job.lease_expires_at = (
            Job.Status.PAUSED, stop.message, None)
        fields = ["status", "message", "lease_expires_at"]
        if stop.result is not None:
            job.result = stop.result
            fields.append("result")
        return job_save(job=job, fields=fields)
    except JobRequeued as stop:
        return _job_requeue(job=job, message=stop.message, countdown=stop.countdown)
    except Exception as exc:  # noqa: BLE001 - a job must end, whatever happened
        _cleanup(job, on_failure)
        described = _error_code_message(exc, errors)
        if described is not None:
            return job_fail(job=job, code=described[0], message=described[1])
        return job_fail_unexpected(job=job, exc=exc, code=fail_code)


__all__ = ["JobCanceled", "JobPaused", "JobRequeued", "JobRun", "job_run"]
