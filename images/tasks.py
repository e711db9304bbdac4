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
    from .services import narration as services_narration

    return services_narration.image_narrate_run(job_id=job_id, image_id=image_id).status


@shared_task(name="images.webhook_deliver", bind=True, acks_late=True)
def webhook_deliver(self, job_id: str) -> bool:
    """Deliver the webhook of finished job ``job_id`` (``images.hooks.webhook_post``); a
    retryable failure is retried ``WEBHOOK_RETRIES`` times, ``WEBHOOK_BACKOFF_SECONDS *
    2**retry`` seconds apart; the final failure is recorded in the job's ``hook_errors``.
    Returns True when delivered."""
    from django.conf import settings

    from . import hooks

    try:
        hooks.webhook_post(job_id=job_id)
    except hooks.WebhookRetryable as exc:
        retries = int(settings.WEBHOOK_RETRIES)
        if self.request.retries >= retries:
            hooks.webhook_failed(job_id=job_id, error=str(exc))
            return False
        raise self.retry(countdown=float(settings.WEBHOOK_BACKOFF_SECONDS)
                         * 2 ** self.request.retries, max_retries=retries) from exc
    except hooks.WebhookRefused as exc:
        hooks.webhook_failed(job_id=job_id, error=str(exc))
        return False
    return True
