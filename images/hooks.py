"""Post-generation hooks: run in order after the images of a generation are stored.

``settings.IMAGES_POST_GENERATION_HOOKS`` lists dotted paths of callables
``hook(*, request, images, job, started) -> None`` (``started`` is ``time.monotonic()`` at the
start of the run). Each hook runs in its own savepoint: an exception is logged and recorded as
``{"hook": name, "code", "message"}`` in the job result's ``hook_errors``; the images and the
other hooks are not affected.

Built-in hooks: thumbnails (makes a missing one), tags (prompt terms, style, LoRA tags and
trigger words), usage (UsageLog with estimated cost from ``PROVIDER_COSTS``), narration (when
``NARRATION_AUTO``) and webhook (when ``WEBHOOK_URL``: POST of the job snapshot after commit,
HMAC-SHA256 signed, delivered by its own Celery task retried with exponential backoff).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from decimal import Decimal

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils.module_loading import import_string

from .tasks import webhook_deliver as webhook_deliver_task

log = logging.getLogger(__name__)

DEFAULT_HOOKS = [
    "images.hooks.hook_thumbnails",
    "images.hooks.hook_tags",
    "images.hooks.hook_usage",
    "images.hooks.hook_narration",
    "images.hooks.hook_webhook",
]


def post_generation_hooks_run(*, request, images, job, started: float) -> list[dict]:
    """Run every configured hook in order; returns the errors (empty when all succeeded)."""
    errors: list[dict] = []
    for path in getattr(settings, "IMAGES_POST_GENERATION_HOOKS", DEFAULT_HOOKS):
        name = path.rsplit(".", 1)[-1]
        try:
            hook = import_string(path)
            with transaction.atomic():
                hook(request=request, images=images, job=job, started=started)
        except Exception as exc:  # noqa: BLE001 - a hook never fails the generation
            log.warning("post-generation hook %s failed for job %s", path, job.pk, exc_info=exc)
            errors.append({"hook": name, "code": getattr(exc, "code", type(exc).__name__),
                           "message": str(getattr(exc, "message", exc))[:500]})
    return errors


# ------------------------------------------------------------------ thumbnails

def hook_thumbnails(*, request, images, job, started) -> None:
    """Make the WebP thumbnail of any image stored without one."""
    from PIL import Image as PILImage

    from .pngmeta import thumbnail_bytes

    for image in images:
        if image.thumbnail:
            continue
        with image.file.open("rb") as fh, PILImage.open(fh) as pil:
            pil.load()
            data = thumbnail_bytes(pil, size=settings.THUMBNAIL_SIZE)
        image.thumbnail.save(f"{image.file.name.rsplit('/', 1)[-1].rsplit('.', 1)[0]}.webp",
                             ContentFile(data), save=False)
        image.save(update_fields=["thumbnail"])


# ------------------------------------------------------------------ tags

_WEIGHT = re.compile(r"[()\[\]{}]|:\s*-?\d+(\.\d+)?")


def prompt_terms(prompt: str, *, max_terms: int = 8, max_words: int = 3) -> list[str]:
    """Comma-separated prompt terms of at most ``max_words`` words, weights, brackets and a
    leading article removed (``(a red hair:1.2)`` -> ``red hair``), quality filler
    (``masterpiece``, ``best quality``) skipped, in order, no duplicates."""
    from .embeddings import PROMPT_STOP_WORDS
    from .prompt import LORA_TAG

    text = _WEIGHT.sub(" ", LORA_TAG.sub(" ", prompt))
    terms: list[str] = []
    for part in re.split(r"[,\n|]", text):
        words = part.lower().strip(" .;:").split()
        while words and words[0] in ("a", "an", "the"):
            words = words[1:]
        if all(w in PROMPT_STOP_WORDS for w in words):
            continue
        term = " ".join(words)
        if len(words) <= max_words and term not in terms:
            terms.append(term)
        if len(terms) >= max_terms:
            break
    return terms


def hook_tags(*, request, images, job, started) -> None:
    """Tag every image with its prompt terms, its style's name, and the tags and trigger words
    of its LoRAs (from the library, ``LoraModel.tags`` / ``trigger_words``)."""
    from loras.models import LoraModel

    from .services.library import image_tags_add

    names = prompt_terms(request.clean_prompt or request.prompt,
                         max_terms=getattr(settings, "TAGS_FROM_PROMPT_MAX", 8))
    if request.style_id:
        names.append(request.style.name)
    lora_ids = [x.get("lora_id") for x in request.loras or []]
    for lora in LoraModel.objects.filter(pk__in=lora_ids):
        names.extend(str(t) for t in (lora.tags or []))
        names.extend(str(t) for t in (lora.trigger_words or []))
    for image in images:
        image_tags_add(image=image, names=names)


# ------------------------------------------------------------------ usage

def estimated_cost(*, provider: str, model_name: str, image_count: int) -> Decimal:
    """USD for ``image_count`` images: ``PROVIDER_COSTS["<provider>/<model name>"]`` or
    ``PROVIDER_COSTS["<provider>"]`` per image, 0 when neither is set (local providers)."""
    costs = getattr(settings, "PROVIDER_COSTS", {}) or {}
    per_image = costs.get(f"{provider}/{model_name}", costs.get(provider, 0))
    return (Decimal(str(per_image)) * image_count).quantize(Decimal("0.0001"))


def hook_usage(*, request, images, job, started) -> None:
    """One UsageLog row for the generation (duration in seconds since ``started``), and one use
    of each LoRA it applied (``usage_count`` + 1, ``last_used_at``: "Most used" sorts by it)."""
    from loras.services.usage import lora_usage_record

    from .models import UsageLog

    provider, model_name = request.profile.provider, request.profile.name
    UsageLog.objects.create(
        user=request.user, request=request, provider=provider, model_name=model_name,
        kind=request.kind, image_count=len(images),
        duration_seconds=time.monotonic() - started,
        lora_names=[x.get("name", "") for x in request.loras or []],
        estimated_cost=estimated_cost(provider=provider, model_name=model_name,
                                      image_count=len(images)),
    )
    lora_usage_record(lora_ids=[x.get("lora_id") for x in request.loras or []])


# ------------------------------------------------------------------ narration

def hook_narration(*, request, images, job, started) -> None:
    """When ``NARRATION_AUTO`` is on, narrate each image now (espeak-ng is fast); an
    unavailable engine is reported as a hook error."""
    if not getattr(settings, "NARRATION_AUTO", False):
        return
    from .services.narration import image_audio_store

    for image in images:
        image_audio_store(image=image)


# ------------------------------------------------------------------ webhook

def webhook_signature(*, body: bytes, secret: str) -> str:
    """``sha256=<hex HMAC-SHA256 of the raw body with secret>`` (the X-Atelier-Signature)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookRetryable(Exception):
    """A delivery that may work later: a connection error, a 5xx or a 429 answer."""


class WebhookRefused(Exception):
    """A delivery the receiver refused (another 4xx): retrying will not help."""


def webhook_post(*, job_id) -> None:
    """POST ``{"event": "generation.finished", "job": <job snapshot>}`` to ``WEBHOOK_URL``
    once, with ``X-Atelier-Signature`` when ``WEBHOOK_SECRET`` is set (timeout
    ``WEBHOOK_TIMEOUT_SECONDS`` seconds, redirects not followed).

    Raises:
        WebhookRetryable: connection error, 5xx or 429 (the task retries with backoff).
        WebhookRefused: another non-2xx answer.
    """
    import requests

    from jobs.models import Job
    from jobs.snapshots import job_snapshot

    url = getattr(settings, "WEBHOOK_URL", "")
    if not url:
        return
    job = Job.objects.get(pk=job_id)
    body = json.dumps({"event": "generation.finished", "job": job_snapshot(job)},
                      sort_keys=True, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "Atelier-webhook/1",
               "X-Atelier-Event": "generation.finished", "X-Atelier-Job": str(job.pk)}
    secret = getattr(settings, "WEBHOOK_SECRET", "")
    if secret:
        headers["X-Atelier-Signature"] = webhook_signature(body=body, secret=secret)
    timeout = float(getattr(settings, "WEBHOOK_TIMEOUT_SECONDS", 10.0))
    try:
        resp = requests.post(url, data=body, headers=headers, timeout=timeout,
                             allow_redirects=False)
    except requests.RequestException as exc:
        raise WebhookRetryable(type(exc).__name__) from exc
    if 200 <= resp.status_code < 300:
        return
    if resp.status_code >= 500 or resp.status_code == 429:
        raise WebhookRetryable(f"HTTP {resp.status_code}")
    raise WebhookRefused(f"HTTP {resp.status_code}")


def webhook_failed(*, job_id, error: str) -> None:
    """Record a delivery that finally failed in the job result's ``hook_errors``."""
    from jobs.models import Job

    log.warning("webhook for job %s failed: %s", job_id, error)
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        result = dict(job.result or {})
        result.setdefault("hook_errors", []).append(
            {"hook": "hook_webhook", "code": "webhook_failed", "message": error[:500]})
        job.result = result
        job.save(update_fields=["result"])


def hook_webhook(*, request, images, job, started) -> None:
    """When ``WEBHOOK_URL`` is set, queue the delivery of the job result (its own Celery task,
    ``images.webhook_deliver``, retried ``WEBHOOK_RETRIES`` times with backoff
    ``WEBHOOK_BACKOFF_SECONDS * 2**retry`` seconds) after the transaction commits — the job is
    then finished, its result final, and the generation worker is free at once."""
    if not getattr(settings, "WEBHOOK_URL", ""):
        return
    job_id = str(job.pk)
    transaction.on_commit(lambda: webhook_deliver_task.apply_async(
        args=[job_id], queue="default"), robust=True)
