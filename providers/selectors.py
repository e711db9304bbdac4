"""Reads of model profiles."""

from __future__ import annotations

from core.exceptions import ApplicationError

from .models import ModelProfile


def profile_get(*, slug: str | None) -> ModelProfile:
    """The enabled profile ``slug``, or the default profile when ``slug`` is empty.

    Raises:
        ApplicationError: 400 ``unknown_model`` naming the available profiles.
    """
    qs = ModelProfile.objects.filter(enabled=True)
    profile = qs.filter(slug=slug).first() if slug else (
        qs.filter(is_default=True).first() or qs.first())
    if profile is None:
        available = ", ".join(qs.values_list("slug", flat=True)) or "none"
        raise ApplicationError(
            "unknown_model",
            f"No model profile {slug!r} (available: {available})." if slug else
            "No model profile is configured; run `python manage.py build_demo_model`.",
            fields={"model": [f"Unknown model profile (available: {available})."]},
        )
    return profile
