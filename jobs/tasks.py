"""Celery tasks of the jobs app."""

from celery import shared_task
from django.conf import settings

from . import services


@shared_task(name="jobs.reap")
def jobs_reap() -> int:
    """Fail running jobs older than the task time limit (their worker died); run by beat."""
    return services.jobs_reap(older_than_seconds=settings.JOB_STALE_SECONDS)
