"""Reads of model profiles and of the configured providers (listing, health, models)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from django.conf import settings
from django.core.cache import cache

from core.exceptions import ApplicationError

from . import registry
from .base import ProviderError
from .http import LAST_ERROR_KEY
from .models import ModelProfile

HEALTH_KEY = "providers:health:{}"
MODELS_KEY = "providers:models:{}"


def profile_get(*, slug: str | None) -> ModelProfile:
    """The enabled profile ``slug`` (or, failing that, named ``slug``), or the default profile
    when ``slug`` is empty.

    Raises:
        ApplicationError: 400 ``unknown_model`` naming the available profiles.
    """
    qs = ModelProfile.objects.filter(enabled=True)
    # By slug, else by name (a library checkpoint's name is its file stem, docs/checkpoints.md).
    profile = (qs.filter(slug=slug).first() or qs.filter(name=slug).order_by("pk").first()) \
        if slug else (qs.filter(is_default=True).first() or qs.first())
    if profile is None:
        available = ", ".join(qs.values_list("slug", flat=True)) or "none"
        raise ApplicationError(
            "unknown_model",
            f"No model profile {slug!r} (available: {available})." if slug else
            "No model profile is configured; run `python manage.py build_demo_model`.",
            fields={"model": [f"Unknown model profile (available: {available})."]},
        )
    return profile


def profile_list() -> Any:
    """Every model profile (enabled or not), default first, then by name."""
    return ModelProfile.objects.all()


def provider_describe(*, name: str) -> dict[str, Any]:
    """``{"name", "backend", "queue", "configured", "missing", "importable",
    "capabilities", "pipeline_types", "detail"}`` of one configured provider; never raises."""
    config = settings.IMAGE_PROVIDERS[name]
    out: dict[str, Any] = {"name": name, "backend": config.get("BACKEND", ""),
                           "queue": config.get("QUEUE", "default"), "configured": False,
                           "missing": [], "importable": False, "capabilities": {},
                           "pipeline_types": [], "detail": ""}
    try:
        provider = registry.instance(name)
    except ProviderError as exc:
        out["detail"] = exc.message
        return out
    missing = getattr(provider, "missing_settings", lambda: [])()
    out.update(importable=True, configured=provider.is_configured(), missing=missing,
               capabilities=provider.capabilities.as_dict(),
               pipeline_types=list(provider.pipeline_types),
               detail=f"Set {', '.join(missing)}." if missing else "")
    return out


def provider_list() -> list[dict[str, Any]]:
    """:func:`provider_describe` of every provider in ``IMAGE_PROVIDERS``, sorted by name."""
    return [provider_describe(name=name) for name in registry.provider_names()]


def _health_one(name: str) -> dict[str, Any]:
    started = time.monotonic()
    try:
        provider = registry.instance(name)
        result = dict(provider.health())
    except ProviderError as exc:
        result = {"configured": False, "reachable": False, "detail": exc.message}
    except Exception as exc:  # noqa: BLE001 - a health check reports, it never fails
        result = {"configured": True, "reachable": False,
                  "detail": f"{type(exc).__name__}: {exc}"[:300]}
    result.setdefault("latency_ms", round((time.monotonic() - started) * 1000, 1))
    result.setdefault("ok", bool(result.get("reachable")))
    result.setdefault("detail", "")
    result = {"name": name, **result, "checked_at": time.time()}
    cache.set(HEALTH_KEY.format(name), result, timeout=settings.PROVIDER_HEALTH_CACHE_SECONDS)
    return result


def provider_health_list(*, refresh: bool = False) -> list[dict[str, Any]]:
    """Per provider ``{"name", "configured", "reachable", "ok", "latency_ms" (ms or None),
    "detail", "last_error" ({"code","message","at"} or None), "checked_at" (epoch s),
    "cached"}``.

    Checks run in parallel and are cached for ``PROVIDER_HEALTH_CACHE_SECONDS``; ``refresh``
    ignores the cache. The answer waits at most ``PROVIDER_HEALTH_TIMEOUT`` + 1 seconds: a
    check still running then (e.g. a local provider importing torch the first time) is
    reported as not reachable, "still checking", and caches its result when it ends.
    """
    names = registry.provider_names()
    results: dict[str, dict] = {}
    todo = []
    for name in names:
        cached = None if refresh else cache.get(HEALTH_KEY.format(name))
        if cached is not None:
            results[name] = {**cached, "cached": True}
        else:
            todo.append(name)
    if todo:
        pool = ThreadPoolExecutor(max_workers=min(8, len(todo)),
                                  thread_name_prefix="provider-health")
        futures = {name: pool.submit(_health_one, name) for name in todo}
        wait(futures.values(), timeout=float(settings.PROVIDER_HEALTH_TIMEOUT) + 1.0)
        pool.shutdown(wait=False)
        for name, future in futures.items():
            if future.done():
                results[name] = {**future.result(), "cached": False}
            else:
                results[name] = {"name": name, "configured": True, "reachable": False,
                                 "ok": False, "latency_ms": None, "checked_at": time.time(),
                                 "detail": "Still checking (slow start); ask again shortly.",
                                 "cached": False}
    for name in names:
        results[name]["last_error"] = cache.get(LAST_ERROR_KEY.format(name))
    return [results[name] for name in names]


def _models_one(name: str) -> dict[str, Any]:
    try:
        provider = registry.get(name)
        return {"provider": name, "models": list(provider.models()), "error": None}
    except ProviderError as exc:
        return {"provider": name, "models": [], "error": {"code": exc.code,
                                                          "message": exc.message}}
    except Exception as exc:  # noqa: BLE001 - one broken provider must not hide the others
        return {"provider": name, "models": [], "error": {
            "code": "provider_error", "message": f"{type(exc).__name__}: {exc}"[:300]}}


def provider_models_list(*, refresh: bool = False) -> list[dict[str, Any]]:
    """``[{"provider", "models": [{"id", "name", "pipeline_type", ...}], "error"}]`` for every
    provider (unconfigured ones carry a ``provider_unavailable`` error), fetched in parallel
    and cached for ``PROVIDER_HEALTH_CACHE_SECONDS`` when successful."""
    names = registry.provider_names()
    results = {}
    todo = []
    for name in names:
        cached = None if refresh else cache.get(MODELS_KEY.format(name))
        if cached is not None:
            results[name] = cached
        else:
            todo.append(name)
    if todo:
        with ThreadPoolExecutor(max_workers=min(8, len(todo))) as pool:
            for result in pool.map(_models_one, todo):
                if result["error"] is None:
                    cache.set(MODELS_KEY.format(result["provider"]), result,
                              timeout=settings.PROVIDER_HEALTH_CACHE_SECONDS)
                results[result["provider"]] = result
    return [results[name] for name in names]
