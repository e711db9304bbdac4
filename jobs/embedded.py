"""The embedded worker: a Celery worker thread inside the web process (``make run``).

With the in-memory transport (``memory://``) producer and consumer must share a process; Celery's
own threaded ``WorkController`` (``celery.contrib.testing.worker``) runs the worker in a thread
with the solo pool, one task at a time, consuming every queue (``default``, ``gpu``, ``io``).
"""

from __future__ import annotations

import contextlib
import logging
import threading

log = logging.getLogger(__name__)
QUEUES = ("default", "gpu", "io")
_stack: contextlib.ExitStack | None = None


def start_embedded_worker(*, queues: tuple[str, ...] = QUEUES, loglevel: str = "WARNING"):
    """Start the worker thread once per process and return the ``WorkController``.

    The thread is a daemon: it ends with the process. Call :func:`stop_embedded_worker` to stop
    it earlier (tests).
    """
    global _stack
    from celery.contrib.testing.worker import start_worker

    from config.celery_app import app

    if _stack is not None:
        return _stack.worker
    stack = contextlib.ExitStack()
    worker = stack.enter_context(start_worker(
        app, pool="solo", concurrency=1, loglevel=loglevel, perform_ping_check=False,
        queues=list(queues), shutdown_timeout=30.0,
    ))
    stack.worker = worker
    _stack = stack
    log.info("embedded Celery worker started on queues %s", ", ".join(queues))
    return worker


def stop_embedded_worker(timeout: float | None = None) -> bool:
    """Stop the embedded worker thread.

    Args:
        timeout: seconds to wait for the running task; ``None`` waits as long as the worker's
            own shutdown timeout (tests).

    Returns:
        True when the thread stopped; False when a task was still running after ``timeout``
        (the thread, a daemon, is left to end with the process; the job's lease or the next
        start's reaper deals with the job).
    """
    global _stack
    stack, _stack = _stack, None
    if stack is None:
        return True
    if timeout is None:
        stack.close()
        return True
    failed: list[BaseException] = []

    def close():
        try:
            stack.close()
        except Exception as exc:  # noqa: BLE001 - Celery's "failed to exit" RuntimeError
            failed.append(exc)

    closer = threading.Thread(target=close, name="embedded-worker-stop", daemon=True)
    closer.start()
    closer.join(timeout)
    return not closer.is_alive() and not failed
