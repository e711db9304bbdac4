"""Celery tasks of the Civitai update check (see loras/tasks.py): the job, and the beat entry
that queues one (``CELERY_BEAT_SCHEDULE["lora-update-check"]``, docs/library.md)."""

from celery import shared_task

__all__ = ["lora_update_check_run", "lora_update_check_scheduled"]


@shared_task(name="loras.update_check_run", acks_late=True, reject_on_worker_lost=True)
def lora_update_check_run(job_id: str) -> str:
    """Run the update-check job ``job_id`` (queue "io"); returns the final job status."""
    from .services.updates import update_check_run

    return update_check_run(job_id=job_id).status


@shared_task(name="loras.update_check_scheduled")
def lora_update_check_scheduled() -> str:
    """The daily beat entry: queue an update check unless one is active; returns the job id or
    why none was queued."""
    from core.exceptions import ApplicationError

    from .services.updates import update_check_start

    try:
        return str(update_check_start().pk)
    except ApplicationError as exc:
        return exc.code
