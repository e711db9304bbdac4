"""Celery tasks of Civitai refresh and downloads (see loras/tasks.py): load by id, call one
service."""

from celery import shared_task

__all__ = ["civitai_refresh_all_run", "download_run"]


@shared_task(name="loras.civitai_refresh_all_run", acks_late=True, reject_on_worker_lost=True)
def civitai_refresh_all_run(job_id: str) -> str:
    """Refresh Civitai metadata of the library for job ``job_id``; returns the job status."""
    from .services import civitai as services_civitai

    return services_civitai.civitai_refresh_all_run(job_id=job_id).status


@shared_task(name="loras.download_run", acks_late=True, reject_on_worker_lost=True)
def download_run(download_id: int) -> str:
    """Run (or re-queue, when the concurrency limit is reached) download ``download_id``."""
    from .services import downloads as services_downloads

    return services_downloads.download_run(download_id=download_id).status
