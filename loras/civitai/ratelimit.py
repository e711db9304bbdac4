"""The one process-wide rate limiter every Civitai call goes through.

Facts (docs/protocols.md#civitai-rate-limits): Civitai publishes no stable per-endpoint limit;
a 429 may carry ``Retry-After: <seconds>`` (the download endpoint's ``RateLimitedEndpoint``) or
none at all (Cloudflare), so the client backs off exponentially (about 1 s up to about 30 s).
5xx answers are safe to retry.

Settings (all read at call time, so tests can shrink them with the ``settings`` fixture):

- ``CIVITAI_BACKOFF_SECONDS`` (default 1.0): first backoff; doubles on each retry.
- ``CIVITAI_BACKOFF_MAX_SECONDS`` (default 30.0): cap of one exponential backoff.
- ``CIVITAI_MAX_RETRY_AFTER`` (default 300.0): cap on a server's ``Retry-After`` (seconds).
- ``CIVITAI_MIN_INTERVAL`` (default 0.0): minimum seconds between two calls of this process.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC
from email.utils import parsedate_to_datetime

from django.conf import settings


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date
    (RFC 9110 §10.2.3). None when absent or unparsable; never negative."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


class RateLimiter:
    """Serializes the *pace* of calls across threads: :meth:`acquire` sleeps until the process
    may call Civitai again; :meth:`penalize` pushes that moment back after a 429/5xx/error.

    Times are ``time.monotonic()`` seconds. Thread-safe (one lock); the sleep happens outside
    the lock so a long wait does not block :meth:`penalize` from other threads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next_allowed = 0.0
        self.total_slept = 0.0  # seconds, for tests and diagnostics

    def acquire(self, *, max_wait: float | None = None) -> float | None:
        """Wait for our turn; returns the seconds slept, or None (without sleeping) when the
        wait would exceed ``max_wait`` seconds."""
        slept = 0.0
        while True:
            with self._lock:
                now = time.monotonic()
                wait = self._next_allowed - now
                if wait <= 0:
                    self._next_allowed = now + _setting("CIVITAI_MIN_INTERVAL", 0.0)
                    self.total_slept += slept
                    return slept
            if max_wait is not None and slept + wait > max_wait:
                return None
            time.sleep(wait)
            slept += wait

    def pending(self) -> float:
        """Seconds until the next call may start (0 when it may start now)."""
        with self._lock:
            return max(0.0, self._next_allowed - time.monotonic())

    def backoff_delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based): the server's
        ``Retry-After`` (capped by ``CIVITAI_MAX_RETRY_AFTER``) when given, else
        ``CIVITAI_BACKOFF_SECONDS * 2**attempt`` capped by ``CIVITAI_BACKOFF_MAX_SECONDS``."""
        if retry_after is not None:
            return min(retry_after, _setting("CIVITAI_MAX_RETRY_AFTER", 300.0))
        base = _setting("CIVITAI_BACKOFF_SECONDS", 1.0)
        return min(base * (2 ** attempt), _setting("CIVITAI_BACKOFF_MAX_SECONDS", 30.0))

    def penalize(self, delay: float) -> None:
        """No call of this process may start in the next ``delay`` seconds."""
        with self._lock:
            self._next_allowed = max(self._next_allowed, time.monotonic() + delay)

    def reset(self) -> None:
        """Forget any pending wait (tests)."""
        with self._lock:
            self._next_allowed = 0.0
            self.total_slept = 0.0


limiter = RateLimiter()
"""The process-wide limiter shared by every :class:`~loras.civitai.client.CivitaiClient`."""
