"""The shared kernel for long work: one ``Job`` row per operation, one progress snapshot."""

import uuid

from django.conf import settings
from django.db import models


class Job(models.Model):
    """A long operation (generation, scan, download...) and its live progress snapshot.

    ``progress`` is 0..1; ``eta_seconds`` is an estimate in seconds; ``seq`` increases with every
    snapshot written so clients can drop stale events.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        PAUSED = "paused"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELED = "canceled"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=50, db_index=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED,
                              db_index=True)
    progress = models.FloatField(default=0.0)
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    message = models.CharField(max_length=500, blank=True)
    eta_seconds = models.FloatField(null=True, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error_code = models.CharField(max_length=100, blank=True)
    error_message = models.TextField(blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="jobs", null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    celery_task_id = models.CharField(max_length=255, blank=True)
    cancel_requested = models.BooleanField(default=False)
    pause_requested = models.BooleanField(default=False)
    seq = models.PositiveIntegerField(default=0)
    # The broker is only a doorbell: what to publish again when a message is lost (#12).
    task_name = models.CharField(max_length=200, blank=True)
    task_args = models.JSONField(default=list, blank=True)
    queue = models.CharField(max_length=50, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    # The lease of the worker running the job, renewed by its heartbeat (seconds: settings).
    attempts = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=255, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # Work that must not run twice at once (a scan, auto-organize...): the database allows one
    # active exclusive job per kind (the constraint below), whatever the isolation level.
    exclusive = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "-created_at"])]
        constraints = [models.UniqueConstraint(
            fields=["kind"], name="one_active_exclusive_job_per_kind",
            condition=models.Q(exclusive=True, status__in=["queued", "running", "paused"]))]

    def __str__(self) -> str:
        return f"{self.kind} {self.id} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED
