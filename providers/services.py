"""Side effects of the providers app: model profile writes and prompt enhancement."""

from __future__ import annotations

from typing import Any

from core.exceptions import ApplicationError

from . import registry
from .base import ProviderError, ProviderUnavailable
from .models import ModelProfile


def provider_error_to_application(exc: ProviderError) -> ApplicationError:
    """The API answer for a provider failure met during a request (not a job):
    503 for unavailable/unconfigured/auth/quota/transient, 429 for rate limits, else 400."""
    if exc.code == "provider_rate_limited":
        status = 429
    elif isinstance(exc, ProviderUnavailable) or exc.retryable or exc.code in (
            "provider_unavailable", "provider_auth", "provider_quota", "provider_timeout"):
        status = 503
    else:
        status = 400
    return ApplicationError(exc.code, exc.message, status=status)


def model_profile_check(*, provider: str, pipeline_type: str) -> None:
    """A profile must name a provider of ``IMAGE_PROVIDERS`` that has ``pipeline_type``.

    Raises:
        ApplicationError: 400 ``invalid`` naming ``provider`` or ``pipeline_type`` (unknown
            ones are never silently replaced).
    """
    names = registry.provider_names()
    if provider not in names:
        raise ApplicationError("invalid", f"provider: unknown provider {provider!r} "
                                          f"(configured: {', '.join(names)}).",
                               fields={"provider": [f"Unknown provider {provider!r}."]})
    try:
        types = registry.instance(provider).pipeline_types
    except ProviderError:
        return  # not importable here (e.g. no torch on this host): checked when it runs
    if pipeline_type not in types:
        raise ApplicationError(
            "invalid", f"pipeline_type: provider {provider!r} has no pipeline type "
                       f"{pipeline_type!r} (it has: {', '.join(types) or 'none'}).",
            fields={"pipeline_type": [f"Not a pipeline type of {provider!r}."]})


def model_profile_save(*, profile: ModelProfile, data: dict[str, Any]) -> ModelProfile:
    """Create or update ``profile`` from validated ``data``; one default at a time.

    Raises:
        ApplicationError: see :func:`model_profile_check`.
    """
    for key, value in data.items():
        setattr(profile, key, value)
    model_profile_check(provider=profile.provider, pipeline_type=profile.pipeline_type)
    profile.full_clean()
    profile.save()
    if profile.is_default:
        ModelProfile.objects.exclude(pk=profile.pk).filter(is_default=True).update(
            is_default=False)
    return profile


def prompt_enhance(*, prompt: str, provider: str = "") -> dict[str, str]:
    """Rewrite ``prompt`` with a text provider: ``provider`` or the first configured one that
    declares ``prompt_enhance``. Returns ``{"prompt": enhanced, "provider": name}``.

    Raises:
        ApplicationError: 400 ``unsupported`` (the named provider has no text model), 503
            ``provider_unavailable`` (none configured), and the mapped provider failures of
            :func:`provider_error_to_application`.
    """
    if provider:
        if provider not in registry.provider_names():
            raise ApplicationError("invalid", f"provider: unknown provider {provider!r}.",
                                   fields={"provider": [f"Unknown provider {provider!r}."]})
        names = [provider]
    else:
        names = [n for n in registry.provider_names()
                 if _safe(lambda n=n: registry.instance(n).capabilities.prompt_enhance)
                 and _safe(lambda n=n: registry.instance(n).is_configured())]
        if not names:
            raise ApplicationError("provider_unavailable",
                                   "No prompt-enhancing provider is configured "
                                   "(set PARASAIL_API_KEY).", status=503)
    try:
        engine = registry.get(names[0])
        if not engine.capabilities.prompt_enhance:
            raise ApplicationError("unsupported",
                                   f"Provider {names[0]!r} cannot rewrite prompts.",
                                   fields={"provider": ["Cannot rewrite prompts."]})
        return {"prompt": engine.enhance_prompt(prompt), "provider": names[0]}
    except ProviderError as exc:
        raise provider_error_to_application(exc) from None


def _safe(fn) -> bool:
    try:
        return bool(fn())
    except ProviderError:
        return False
