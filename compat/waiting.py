"""Waiting for a job inside an HTTP call (A1111 and OpenAI clients expect the images in the
answer to their POST).

The job is a normal Job: it runs on a worker, streams progress over the WebSocket and lists in
``/api/jobs/``. The view listens for the job's end the way a WebSocket client does: it joins
the job's channel group (``jobs.events.job_group``) and wakes on the final event, reading the
row once after joining (so an end before that is not missed) and again every
``RECHECK_SECONDS`` (a lost push). Without a channel layer, or if listening fails, it reads
the status instead (:func:`_pause`). A sync view under ASGI runs in a thread of its own per
request (asgiref's ``ThreadSensitiveContext``); the listening runs on the server's event loop
(``async_to_sync`` from that thread), so a waiting call holds no database connection.
"""

from __future__ import annotations

import asyncio
import logging
import time

from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.db import connection

from core.exceptions import ApplicationError
from jobs.models import Job
from jobs.services import job_cancel

log = logging.getLogger(__name__)
MAX_PAUSE = 0.5  # seconds
IDLE_POLLS = 3
RECHECK_SECONDS = 1.0


def _status(job_id) -> str | None:
    return Job.objects.filter(pk=job_id).values_list("status", flat=True).first()


async def _listen_until_end(job_id: str, deadline: float) -> None:
    """Return when job ``job_id`` has ended, or at ``deadline`` (``time.monotonic()``)."""
    from channels.layers import get_channel_layer

    from jobs.events import job_group, remember_server_loop

    layer = get_channel_layer()
    if layer is None:
        return
    # The in-memory layer delivers on the loop that consumers run on: this one (the server's).
    remember_server_loop()
    channel = await layer.new_channel()
    group = job_group(job_id)
    await layer.group_add(group, channel)
    try:
        while True:
            status = await sync_to_async(_status)(job_id)
            if status is None or status in Job.FINISHED:
                return
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                try:
                    message = await asyncio.wait_for(layer.receive(channel),
                                                     min(RECHECK_SECONDS, remaining))
                except TimeoutError:
                    break  # read the row again
                if (message.get("job") or {}).get("status") in Job.FINISHED:
                    return
    finally:
        await layer.group_discard(group, channel)


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
    try:
        async_to_sync(_listen_until_end)(str(job_id), deadline)
    except Exception:  # noqa: BLE001 - listening is an optimisation: read the row instead
        log.warning("could not listen for the end of job %s; polling", job_id, exc_info=True)
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
