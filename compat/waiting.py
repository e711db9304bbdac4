"""Waiting for a job inside an HTTP call (A1111 and OpenAI clients expect the images in the
answer to their POST).

The job is a normal Job: it runs on a worker, streams progress over the WebSocket and lists in
``/api/jobs/``; the view only reads its status until it ends. A sync view under ASGI runs in a
thread of its own per request (asgiref's ``ThreadSensitiveContext``), so a waiting call holds
one thread and, between two reads, no database connection on PostgreSQL (the pooled
connection goes back to the pool).
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connection

from core.exceptions import ApplicationError
from jobs.models import Job
from jobs.services import job_cancel

MAX_PAUSE = 0.5  # seconds
IDLE_POLLS = 3


def _pause(status: str, eta: float | None, *, poll: float) -> float:
    """Seconds to sleep before the next read: half the job's estimated time left (at most
    ``MAX_PAUSE``), never less than ``poll``; ``IDLE_POLLS`` x ``poll`` while it has no
    estimate yet (queued, or before its first step). The reads thin out while the pipeline
    runs (in the embedded server it shares the process, and every read takes the GIL from
    it), come every ``poll`` seconds once the end is near and every ``poll / 2`` once the last
    step is done (the job is storing its images)."""
    if status != Job.Status.RUNNING or eta is None:
        return poll * IDLE_POLLS
    if eta <= 0:  # the last step is done: files, rows and hooks are being written
        return poll / 2
    return min(MAX_PAUSE, max(poll, eta / 2))


def job_wait(*, job_id, timeout: float | None = None, poll: float | None = None) -> Job:
    """Block until job ``job_id`` has ended and return it.

    Args:
        timeout: seconds to wait at most (default ``COMPAT_WAIT_SECONDS``).
        poll: seconds between two reads of the job's status near its end (default
            ``COMPAT_POLL_SECONDS``; see :func:`_pause`).

    Raises:
        ApplicationError: 503 ``job_timeout`` when the job has not ended in ``timeout``
            seconds; the job is then canceled (nobody is left to receive its images).
    """
    timeout = settings.COMPAT_WAIT_SECONDS if timeout is None else timeout
    poll = settings.COMPAT_POLL_SECONDS if poll is None else poll
    deadline = time.monotonic() + timeout
    pooled = connection.vendor != "sqlite"
    while True:
        row = Job.objects.filter(pk=job_id).values_list("status", "eta_seconds").first()
        if row is None or row[0] in Job.FINISHED:
            return Job.objects.get(pk=job_id)
        if time.monotonic() >= deadline:
            break
        if pooled:
            connection.close()  # back to the pool while sleeping
        time.sleep(max(0.0, min(_pause(*row, poll=poll), deadline - time.monotonic())))
    job = Job.objects.get(pk=job_id)
    try:
        job_cancel(job=job)
    except ApplicationError:  # it ended in the meantime
        return Job.objects.get(pk=job_id)
    raise ApplicationError(
        "job_timeout",
        f"The job {job_id} did not finish within {timeout:g} seconds "
        "(COMPAT_WAIT_SECONDS); it was canceled.", status=503)
