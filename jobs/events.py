"""Pushing job snapshots to Channels groups ``job.<id>`` and ``user.<id>.jobs``.

Sends go through the channel layer from synchronous code (Celery workers, services), always on
one long-lived event loop so the layer's connection pool stays warm (``async_to_sync`` would make
a new loop, and channels-redis a new Redis connection, for every event):
- in-memory layer (embedded mode): the ASGI server's own loop, where the consumers wait
  (asyncio queues are not thread-safe);
- any other layer (Redis): a private loop in a daemon thread of this process.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

log = logging.getLogger(__name__)
_server_loop: asyncio.AbstractEventLoop | None = None
_sender_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()
SEND_TIMEOUT = 5.0  # seconds to wait for one push before giving up


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


def _private_loop() -> asyncio.AbstractEventLoop:
    """The process's sender loop, started on first use (a fresh one after a fork)."""
    global _sender_loop
    with _loop_lock:
        if _sender_loop is None or _sender_loop.is_closed() or not _sender_thread_alive():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="job-events", daemon=True)
            thread.start()
            loop._atelier_thread = thread  # type: ignore[attr-defined]
            _sender_loop = loop
        return _sender_loop


def _sender_thread_alive() -> bool:
    thread = getattr(_sender_loop, "_atelier_thread", None)
    return thread is not None and thread.is_alive()


class _Outbox:
    """A FIFO of pushes drained by one task on ``loop``: senders never wait for the layer,
    and events leave in the order they were produced."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.queue: asyncio.Queue | None = None

    def _start(self):
        self.queue = asyncio.Queue()
        self.loop.create_task(self._drain())

    async def _drain(self):
        while True:
            layer, groups, message = await self.queue.get()
            for group in groups:
                try:
                    await asyncio.wait_for(layer.group_send(group, message), SEND_TIMEOUT)
                except Exception:  # noqa: BLE001 - a lost push must never stop the outbox
                    log.warning("could not push job event to %s", group, exc_info=True)

    def put(self, item) -> None:
        def _put():
            if self.queue is None:
                self._start()
            self.queue.put_nowait(item)

        self.loop.call_soon_threadsafe(_put)


_outboxes: dict[int, _Outbox] = {}


def _outbox(loop: asyncio.AbstractEventLoop) -> _Outbox:
    with _loop_lock:
        box = _outboxes.get(id(loop))
        if box is None or box.loop is not loop:
            box = _outboxes[id(loop)] = _Outbox(loop)
        return box


def _private_layer(loop: asyncio.AbstractEventLoop):
    """A channel layer instance of the sender loop's own (the process-wide one may hold
    locks bound to another loop)."""
    layer = getattr(loop, "_atelier_layer", None)
    if layer is None:
        from channels import DEFAULT_CHANNEL_LAYER
        from channels.layers import channel_layers

        layer = loop._atelier_layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
    return layer


def send_to_groups(groups: list[str], message: dict) -> None:
    """Queue ``message`` (a Channels event dict with ``type``) for each group; never raises
    and never waits for the channel layer.

    A push that fails (Redis down, no layer) is logged: the snapshot in the database is the
    source of truth and clients that reconnect read it.
    """
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        if isinstance(layer, InMemoryChannelLayer):
            loop = _server_loop
            if loop is None or not loop.is_running():
                # No server in this process (tests, CLI): deliver now, synchronously.
                async def _send():
                    for group in groups:
                        await layer.group_send(group, message)

                async_to_sync(_send)()
                return
        else:
            loop = _private_loop()
            layer = _private_layer(loop)
        _outbox(loop).put((layer, groups, message))
    except Exception:  # noqa: BLE001 - a lost push must never fail the work
        log.warning("could not push job event to %s", groups, exc_info=True)
