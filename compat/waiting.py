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


def job_wait(*, job_id, timeout: float | None = None, poll: float | None = None) -> Job:
    """Block until job ``job_id`` has ended and return it.

    Args:
        timeout: seconds to wait at most (default ``COMPAT_WAIT_SECONDS``).
        poll: seconds between two reads of the job's status (default ``COMPAT_POLL_SECONDS``).

    Raises:
        ApplicationError: 503 ``job_timeout`` when the job has not ended in ``timeout``
            seconds; the job is then canceled (nobody is left to receive its images).
    """
    timeout = settings.COMPAT_WAIT_SECONDS if timeout is None else timeout
    poll = settings.COMPAT_POLL_SECONDS if poll is None else poll
    deadline = time.monotonic() + timeout
    pooled = connection.vendor != "sqlite"
    while True:
        status = Job.objects.filter(pk=job_id).values_list("status", flat=True).first()
        if status is None or status in Job.FINISHED:
            return Job.objects.get(pk=job_id)
        if time.monotonic() >= deadline:
            break
        if pooled:
            connection.close()  # back to the pool while sleeping
        time.sleep(max(0.0, min(poll, deadline - time.monotonic())))
    job = Job.objects.get(pk=job_id)
    try:
        job_cancel(job=job)
    except ApplicationError:  # it ended in the meantime
        return Job.objects.get(pk=job_id)
    raise ApplicationError(
        "job_timeout",
        f"The job {job_id} did not finish within {timeout:g} seconds "
        "(COMPAT_WAIT_SECONDS); it was canceled.", status=503)
