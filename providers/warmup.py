"""Warm up providers when a worker starts, so the first job does not pay for heavy imports."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

from . import registry

log = logging.getLogger(__name__)


def warm_up_providers(*, queues: Iterable[str] | None = None) -> None:
    """Call ``warm_up()`` of every configured provider whose Celery queue is in ``queues``
    (all providers when ``queues`` is None). Failures are logged, never raised."""
    wanted = None if queues is None else set(queues)
    for name in registry.provider_names():
        try:
            if wanted is not None and registry.provider_queue(name) not in wanted:
                continue
            provider = registry.instance(name)
            if not provider.is_configured():
                log.debug("provider %s is not configured: no warm-up", name)
                continue
            started = time.monotonic()
            provider.warm_up()
            log.info("warmed up provider %s in %.1f s", name, time.monotonic() - started)
        except Exception:  # noqa: BLE001 - a failed warm-up only costs time later
            log.warning("warm-up of provider %s failed", name, exc_info=True)


def warm_up_in_background(*, queues: Iterable[str] | None = None) -> threading.Thread:
    """Run :func:`warm_up_providers` in a daemon thread and return it."""
    thread = threading.Thread(target=warm_up_providers, kwargs={"queues": queues},
                              name="provider-warm-up", daemon=True)
    thread.start()
    return thread


def on_worker_ready(sender=None, **kwargs) -> None:
    """Celery ``worker_ready`` handler: warm the providers served by this worker's queues.

    Not in the main process of a prefork worker: its pool children are already forked (they
    would not benefit), and a thread importing modules there while the pool forks a
    replacement child (after one was killed) leaves that child deadlocked on the import lock,
    its job never finishing (seen in tests/reliability/test_worker_kill.py, issue #7).
    """
    pool = getattr(sender, "pool", None)
    if pool is not None and type(pool).__module__.endswith(".prefork"):
        return
    try:
        queues = [q.name for q in sender.task_consumer.queues]
    except AttributeError:
        queues = None
    warm_up_in_background(queues=queues)
