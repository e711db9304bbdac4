"""Request rate limits (DRF throttles) for the endpoints worth abusing: generation and login.

Rates are read from Django settings at each request (``THROTTLE_GENERATE_RATE``,
``THROTTLE_LOGIN_RATE``; DRF's ``"<count>/<period>"`` form, period ``s``/``m``/``h``/``d``; an
empty value turns the throttle off), so they can be changed per environment and per test. The
counters live in the default cache (local memory in embedded mode, Redis otherwise, so every web
process shares them). A throttled request gets 429 ``{"code": "throttled", "message"}`` with a
``Retry-After`` header in whole seconds (DRF's ``Throttled`` through
``core.exceptions.api_exception_handler``).
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle


class _SettingsRateThrottle(SimpleRateThrottle):
    """A ``SimpleRateThrottle`` whose rate comes from ``settings.<setting_name>`` at request time
    (DRF's own ``DEFAULT_THROTTLE_RATES`` is read once at import, which tests cannot change)."""

    setting_name = ""

    def get_rate(self):
        return getattr(settings, self.setting_name, None) or None

    def allow_request(self, request, view):
        """DRF's check, failing open when the cache (Redis) is unreachable: the request goes
        on, and ``POST /api/generate/`` then answers 503 ``broker_unavailable`` instead of a
        500 from the throttle (reliability, issue #7)."""
        try:
            from redis.exceptions import RedisError  # not an OSError
        except ImportError:  # pragma: no cover - redis is a dependency
            RedisError = OSError
        try:
            return super().allow_request(request, view)
        except (OSError, RedisError) as exc:
            import logging

            logging.getLogger(__name__).warning("rate limit not checked: cache down (%s)", exc)
            return True


class GenerateRateThrottle(_SettingsRateThrottle):
    """``POST /api/generate/`` per user (``THROTTLE_GENERATE_RATE``, e.g. ``"60/min"``)."""

    scope = "generate"
    setting_name = "THROTTLE_GENERATE_RATE"

    def allow_request(self, request, view):
        if request.method != "POST":
            return True
        return super().allow_request(request, view)

    def get_cache_key(self, request, view):
        ident = request.user.pk if request.user and request.user.is_authenticated \
            else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class LoginRateThrottle(_SettingsRateThrottle):
    """``POST /api/auth/token/`` per client address (``THROTTLE_LOGIN_RATE``, e.g. ``"10/min"``):
    slows password guessing. The address is ``REMOTE_ADDR`` (or ``X-Forwarded-For`` within
    DRF's ``NUM_PROXIES``)."""

    scope = "login"
    setting_name = "THROTTLE_LOGIN_RATE"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
