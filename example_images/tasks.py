"""Celery tasks of example images: load by id, call one service."""

from celery import shared_task

__all__ = ["example_download_run", "example_generate_run"]


@shared_task(name="example_images.download_run", acks_late=True, reject_on_worker_lost=True)
def example_download_run(job_id: str) -> str:
    """Run (or continue) example-image download job ``job_id``; returns the job status."""
    from .services import download as services_download

    return services_download.example_download_run(job_id=job_id).status


@shared_task(name="example_images.generate_run", acks_late=True, reject_on_worker_lost=True)
def example_generate_run(job_id: str) -> str:
    """Generate the example images planned by job ``job_id``; returns the job status."""
    from .services import generate as services_generate

    return services_generate.example_generate_run(job_id=job_id).status
