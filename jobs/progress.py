"""The progress reporter every long operation uses (a ``providers.base.ProgressSink``)."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings

from .models import Job
from .services import job_save


class ProgressReporter:
    """Updates a job's snapshot while work runs, throttled, and pushes it to clients.

    Args:
        job: the running job.
        min_interval: seconds between two snapshots (default ``JOB_PROGRESS_MIN_INTERVAL``);
            the last step always goes out.
        listener: optional ``callable(step, total_steps)`` called on every step (e.g. a CLI
            progress bar), unthrottled.
        lease_lost: optional ``callable() -> bool``, true once the worker lost its lease on
            the job (``jobs.lease.Heartbeat``): the work is then asked to stop.
    """

    def __init__(self, job: Job, *, min_interval: float | None = None,
                 listener: Callable[[int, int], None] | None = None,
                 lease_lost: Callable[[], bool] | None = None):
        self.job = job
        self.min_interval = (settings.JOB_PROGRESS_MIN_INTERVAL if min_interval is None
                             else min_interval)
        self.listener = listener
        self.lease_lost = lease_lost
        self._last_sent = 0.0
        self._started = time.monotonic()
        self._cancel_checked = 0.0
        self._cancel = False
        self._preview: str | None = None

    def step(self, step: int, total_steps: int, message: str = "") -> None:
        """Record ``step`` of ``total_steps`` done; estimate the ETA (seconds) linearly."""
        if self.listener:
            self.listener(step, total_steps)
        now = time.monotonic()
        if step < total_steps and now - self._last_sent < self.min_interval:
            return
        self._last_sent = now
        job = self.job
        job.step = step
        job.total_steps = total_steps
        job.progress = min(step / total_steps, 1.0) if total_steps else 0.0
        elapsed = now - self._started
        job.eta_seconds = elapsed / step * (total_steps - step) if step else None
        if message:
            job.message = message
        fields = ["step", "total_steps", "progress", "eta_seconds", "message"]
        if self._preview is not None:  # a preview image since the last snapshot (#5)
            job.result = {**(job.result or {}), "preview": self._preview}
            self._preview = None
            fields.append("result")
        job_save(job=job, fields=fields)

    def preview(self, data_url: str) -> None:
        """Attach a preview image (a small ``data:image/webp;base64,...`` URL) to the next
        snapshot, as ``result["preview"]`` while the job runs (the final result replaces it)."""
        self._preview = data_url

    def should_cancel(self) -> bool:
        """True when a cancel was requested for the job: one indexed read, at most every
        ``JOB_CANCEL_CHECK_INTERVAL`` seconds (so a cancel lands within that time)."""
        if self.lease_lost is not None and self.lease_lost():
            return True
        now = time.monotonic()
        if not self._cancel and now - self._cancel_checked >= settings.JOB_CANCEL_CHECK_INTERVAL:
            self._cancel_checked = now
            self._cancel = Job.objects.filter(pk=self.job.pk, cancel_requested=True).exists()
        return self._cancel
