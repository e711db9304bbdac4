"""Pushing job snapshots to Channels groups ``job.<id>`` and ``user.<id>.jobs``.

Sends go through the channel layer from synchronous code (Celery workers, services). With the
in-memory layer (embedded mode) the consumers live on the ASGI server's event loop in another
thread; asyncio queues are not thread-safe, so sends are handed to that loop when it is known.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

log = logging.getLogger(__name__)
_server_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def job_group(job_id) -> str:
    """Channel group of one job."""
    return f"job.{job_id}"


def user_group(user_id) -> str:
    """Channel group of all jobs of one user."""
    return f"user.{user_id}.jobs"


def remember_server_loop() -> None:
    """Record the running event loop as the one serving consumers (called from a consumer)."""
    global _server_loop
    with _loop_lock:
        _server_loop = asyncio.get_running_loop()


def send_to_groups(groups: list[str], message: dict) -> None:
    """Send ``message`` (a Channels event dict with ``type``) to each group; never raises.

    A push that fails (Redis down, no layer) is logged: the snapshot in the database is the
    source of truth and clients that reconnect read it.
    """
    layer = get_channel_layer()
    if layer is None:
        return

    async def _send():
        for group in groups:
            await layer.group_send(group, message)

    try:
        loop = _server_loop
        if isinstance(layer, InMemoryChannelLayer) and loop is not None and loop.is_running():
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is not loop:
                asyncio.run_coroutine_threadsafe(_send(), loop).result(timeout=5)
                return
        async_to_sync(_send)()
    except Exception:  # noqa: BLE001 - a lost push must never fail the work
        log.warning("could not push job event to %s", groups, exc_info=True)
