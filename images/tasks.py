"""Celery tasks of the images app: load by id, call one service."""

from celery import shared_task


@shared_task(name="images.generation_run", acks_late=True, reject_on_worker_lost=True)
def generation_run(request_id: int) -> str:
    """Run generation request ``request_id``; returns the final job status."""
    from . import services

    return services.generation_run(request_id=request_id).status


@shared_task(name="images.image_narrate_run", acks_late=True)
def image_narrate_run(job_id: str, image_id: int) -> str:
    """Narrate image ``image_id`` for job ``job_id``; returns the final job status."""
    from . import services_narration

    return services_narration.image_narrate_run(job_id=job_id, image_id=image_id).status
