"""Narration of an image: queue a job that reads its caption (or prompt) aloud and stores the
audio on the image (``Image.audio``, WAV from espeak-ng; see ``images.narration``)."""

from __future__ import annotations

import uuid

from django.core.files.base import ContentFile
from django.db import transaction

from core.exceptions import ApplicationError
from jobs.kernel import JobRun, job_run
from jobs.models import Job
from jobs.services import job_create, job_enqueue, job_succeed

from ..models import Image
from ..narration import get_engine, narration_text
from ..tasks import image_narrate_run as image_narrate_run_task


def image_audio_store(*, image: Image) -> Image:
    """Synthesize ``narration_text(image)`` and store it as ``image.audio`` (replacing an older
    file, removed after commit).

    Raises:
        ApplicationError: 503 ``tts_unavailable`` / ``tts_failed``, 400 ``invalid``.
    """
    data, ext = get_engine().synthesize(narration_text(image))
    old = image.audio.name if image.audio else ""
    storage = image.audio.storage
    image.audio.save(f"{uuid.uuid4().hex}.{ext}", ContentFile(data), save=False)
    image.save(update_fields=["audio"])
    if old:
        transaction.on_commit(lambda: storage.delete(old))
    return image


def image_narrate_start(*, image: Image, user) -> Job:
    """Queue narration of ``image`` (owner only) on the ``default`` queue; returns the job.

    Raises:
        ApplicationError: 403 ``forbidden`` (not the owner), 503 ``tts_unavailable`` (no
            engine: checked now so the client hears it at once), 503 ``broker_unavailable``.
    """
    if image.user_id != user.pk:
        raise ApplicationError("forbidden", "You cannot narrate this image.", status=403)
    if not get_engine().available():
        raise ApplicationError("tts_unavailable",
                               "Text-to-speech is not installed (espeak-ng).", status=503)

    with transaction.atomic():
        job = job_create(kind="narrate", user=user, total_steps=1,
                         celery_task_id=str(uuid.uuid4()), message="Queued")
        job.result = {"image": image.pk}
        job.save(update_fields=["result"])
        job_enqueue(job=job, task=image_narrate_run_task, args=[str(job.pk), image.pk],
                    queue="default")  # recorded with the job, published at the commit
    return job


def image_narrate_run(*, job_id, image_id: int) -> Job:
    """Run a queued narration job through the job kernel; failures end the job (never
    raise): ``not_found`` when the image was deleted, the engine's ``tts_*`` codes."""

    def work(run: JobRun):
        image = Image.objects.filter(pk=image_id).first()
        if image is None:
            raise ApplicationError("not_found", "The image was deleted.", status=404)
        with transaction.atomic():
            image_audio_store(image=image)
            return job_succeed(job=run.job, message="Narrated",
                               result={"image": image.pk, "audio_url": image.audio.url})

    return job_run(job_id=job_id, work=work, total_steps=1, message="Narrating")
