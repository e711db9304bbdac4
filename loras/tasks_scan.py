"""Celery tasks of the library scan (see loras/tasks.py): load by id, call one service."""

from celery import shared_task

__all__ = ["lora_scan"]


@shared_task(name="loras.lora_scan", acks_late=True, reject_on_worker_lost=True)
def lora_scan(job_id: str) -> str:
    """Run the scan job ``job_id`` (queue "io"); returns the final job status."""
    from .services import scan as services_scan

    return services_scan.library_scan_run(job_id=job_id).status
