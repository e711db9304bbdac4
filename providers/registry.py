"""Settings-driven provider registry, in the manner of Django's ``STORAGES``.

``settings.IMAGE_PROVIDERS`` maps a provider name to
``{"BACKEND": "dotted.path.Class", "QUEUE": "gpu", "OPTIONS": {...}}``. Backends are imported
lazily on first use and instantiated once per process.
"""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from .base import ImageProvider, ProviderUnavailable

_instances: dict[str, ImageProvider] = {}
_lock = threading.Lock()


def provider_config(name: str) -> dict[str, Any]:
    """The settings entry for ``name``.

    Raises:
        ProviderUnavailable: no provider of that name is configured.
    """
    try:
        return settings.IMAGE_PROVIDERS[name]
    except KeyError:
        raise ProviderUnavailable(
            f"Provider {name!r} is not configured; add it to IMAGE_PROVIDERS "
            f"(configured: {', '.join(sorted(settings.IMAGE_PROVIDERS)) or 'none'})."
        ) from None


def provider_names() -> list[str]:
    """Names of all configured providers, sorted."""
    return sorted(settings.IMAGE_PROVIDERS)


def provider_queue(name: str) -> str:
    """The Celery queue that runs jobs of provider ``name`` (``default`` when unset)."""
    return provider_config(name).get("QUEUE", "default")


def get(name: str) -> ImageProvider:
    """The process-wide instance of provider ``name``, ready to serve jobs.

    Raises:
        ProviderUnavailable: not in IMAGE_PROVIDERS, its backend (or a library it needs) cannot
            be imported, or a required setting (API key, base URL) is empty; the message says
            what to install or configure.
        ImproperlyConfigured: the backend rejected its ``OPTIONS``.
    """
    provider = instance(name)
    if not provider.is_configured():
        require = getattr(provider, "require_configured", None)
        if require is not None:
            require()
        raise ProviderUnavailable(f"Provider {name!r} is not configured.")
    return provider


def instance(name: str) -> ImageProvider:
    """Like :func:`get`, but also returns providers whose settings are incomplete (for
    listings and health checks)."""
    with _lock:
        if name in _instances:
            return _instances[name]
        config = provider_config(name)
        backend = config.get("BACKEND")
        if not backend:
            raise ImproperlyConfigured(f"IMAGE_PROVIDERS[{name!r}] has no BACKEND")
        try:
            cls = import_string(backend)
        except ImportError as exc:
            raise ProviderUnavailable(
                f"Provider {name!r} needs {backend}, which cannot be imported ({exc}). "
                "Install the project's dependencies (make install) or fix IMAGE_PROVIDERS."
            ) from exc
        instance = cls(**config.get("OPTIONS", {}))
        _instances[name] = instance
        return instance


def reset() -> None:
    """Forget instantiated providers (tests that change IMAGE_PROVIDERS call this)."""
    with _lock:
        _instances.clear()
