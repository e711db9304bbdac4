"""Celery tasks of the jobs app."""

from celery import shared_task
from django.conf import settings


@shared_task(name="jobs.reap")
def jobs_reap() -> int:
    """Fail running jobs older than the task time limit (their worker died), and queued jobs
    older than ``JOB_QUEUED_STALE_SECONDS`` (their message was lost, e.g. Redis restarted
    without persistence); run by beat. Returns the number of jobs failed."""
    from . import services
    from .models import Job

    count = services.jobs_reap(older_than_seconds=settings.JOB_STALE_SECONDS)
    queued_limit = getattr(settings, "JOB_QUEUED_STALE_SECONDS", 0)
    if queued_limit > 0:
        count += services.jobs_reap(
            older_than_seconds=queued_limit, statuses=(Job.Status.QUEUED,), code="queue_lost",
            message="This job waited longer than any queue should; its task message was "
                    "probably lost (the broker restarted). Start it again.")
    return count

