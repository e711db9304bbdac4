"""Celery tasks of the library operations (see loras/tasks.py): load by id, call one service."""

from celery import shared_task

__all__ = ["lora_organize_run"]


@shared_task(name="loras.organize_run", acks_late=True, reject_on_worker_lost=True)
def lora_organize_run(job_id: str, template: str) -> str:
    """Run the auto-organize job ``job_id`` with ``template``; returns the final job status."""
    from .services.organize import organize_run

    return organize_run(job_id=job_id, template=template).status
