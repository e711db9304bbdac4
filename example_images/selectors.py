"""Reads of example images and of the example-image download job."""

from __future__ import annotations

from django.db.models import QuerySet

from core.exceptions import ApplicationError
from jobs.models import Job

from .models import ExampleImage

DOWNLOAD_KIND = "example_images"
GENERATE_KIND = "example_generate"
ACTIVE = (Job.Status.QUEUED, Job.Status.RUNNING, Job.Status.PAUSED)


def example_list(*, lora) -> QuerySet[ExampleImage]:
    """The example images of ``lora`` in display order."""
    return ExampleImage.objects.filter(lora=lora).order_by("order", "id")


def example_get(*, lora, pk) -> ExampleImage:
    """Example image ``pk`` of ``lora``.

    Raises:
        ApplicationError: 404 ``not_found`` (also when it belongs to another LoRA).
    """
    try:
        return ExampleImage.objects.select_related("lora__root").get(lora=lora, pk=int(pk))
    except (ExampleImage.DoesNotExist, ValueError, TypeError):
        raise ApplicationError("not_found", "No such example image.", status=404) from None


def example_get_any(*, pk) -> ExampleImage:
    """Example image ``pk`` of any LoRA (the library is shared). 404 ``not_found``."""
    try:
        return ExampleImage.objects.get(pk=int(pk))
    except (ExampleImage.DoesNotExist, ValueError, TypeError):
        raise ApplicationError("not_found", "No such example image.", status=404) from None


def download_job_active() -> Job | None:
    """The queued, running or paused example-image download job, if any."""
    return (Job.objects.filter(kind=DOWNLOAD_KIND, status__in=ACTIVE)
            .order_by("-created_at").first())


def download_job_latest() -> Job | None:
    """The active download job, else the newest one (finished), else None."""
    return download_job_active() or (Job.objects.filter(kind=DOWNLOAD_KIND)
                                     .order_by("-created_at").first())


def example_generate_profiles() -> list[dict]:
    """The model profiles local example generation can use, for the LoRA page's select:
    enabled ones, default first, upscale-only pipelines left out, each as ``{"slug", "name",
    "is_default", "available": bool, "reason": why not available}`` (a provider that cannot be
    instantiated, e.g. a missing API key, is listed but not available)."""
    from providers import registry
    from providers.models import ModelProfile

    out = []
    for profile in ModelProfile.objects.filter(enabled=True).order_by("-is_default", "name"):
        reason = ""
        try:
            provider = registry.get(profile.provider)
            if profile.pipeline_type in provider.upscale_only_pipeline_types:
                continue
            if profile.pipeline_type not in provider.pipeline_types:
                reason = f"no pipeline type {profile.pipeline_type!r}"
        except Exception as exc:  # noqa: BLE001 — any provider error only greys the profile out
            reason = str(exc) or exc.__class__.__name__
        out.append({"slug": profile.slug, "name": profile.name, "is_default": profile.is_default,
                    "available": not reason, "reason": reason})
    return out
