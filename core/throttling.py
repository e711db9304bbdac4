"""Request rate limits (DRF throttles) for the endpoints that cost: queued work, decoded images,
and login.

Rates are read from Django settings at each request, one setting per scope:
``THROTTLE_<SCOPE>_RATE`` (``THROTTLE_GENERATE_RATE``, ``THROTTLE_EDIT_RATE``,
``THROTTLE_LORA_SCAN_RATE`` ...; DRF's ``"<count>/<period>"`` form, period ``s``/``m``/``h``/``d``;
an empty value turns that throttle off), so they can be changed per environment and per test.
A view opts in with ``throttle_classes = [CostRateThrottle]`` and ``throttle_scope = "edit"``
(a ViewSet action passes both to ``@action``); only unsafe methods (POST, PUT, PATCH, DELETE)
count, so reading a throttled endpoint's GET side stays free.

Counters are per user (per client address for anonymous requests) and live in the default
cache (local memory in embedded mode, Redis otherwise, so every web process shares them). A
throttled request gets 429 ``{"code": "throttled", "message"}`` with ``Retry-After`` in whole
seconds (DRF's ``Throttled`` through ``core.exceptions.api_exception_handler``). The client
address is :func:`core.client_ip.client_ip` (``X-Forwarded-For`` only behind
``TRUSTED_PROXIES``), never DRF's own ``get_ident``, which believes any ``X-Forwarded-For``.
"""

from __future__ import annotations

import logging

from django.conf import settings
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import SimpleRateThrottle

from .client_ip import client_ip

log = logging.getLogger(__name__)


class _SettingsRateThrottle(SimpleRateThrottle):
    """A ``SimpleRateThrottle`` whose rate comes from ``settings.THROTTLE_<SCOPE>_RATE`` at
    request time (DRF's ``DEFAULT_THROTTLE_RATES`` is read once at import)."""

    scope: str | None = None

    def __init__(self):  # the rate is resolved per request, once the scope is known
        pass

    def get_rate(self):
        return getattr(settings, f"THROTTLE_{(self.scope or '').upper()}_RATE", None) or None

    def get_ident(self, request):
        return client_ip(request)

    def allow_request(self, request, view):
        """DRF's check, failing open when the cache (Redis) is unreachable: the request goes
        on (and a queuing endpoint then answers 503 ``broker_unavailable``) instead of a 500
        from the throttle (reliability, issue #7)."""
        self.rate = self.get_rate()
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        try:
            from redis.exceptions import RedisError  # not an OSError
        except ImportError:  # pragma: no cover - redis is a dependency
            RedisError = OSError
        try:
            return super().allow_request(request, view)
        except (OSError, RedisError) as exc:
            log.warning("rate limit not checked: cache down (%s)", exc)
            return True


class CostRateThrottle(_SettingsRateThrottle):
    """Unsafe requests per user to a view with ``throttle_scope`` (``THROTTLE_<SCOPE>_RATE``)."""

    def allow_request(self, request, view):
        if request.method in SAFE_METHODS:
            return True
        self.scope = getattr(view, "throttle_scope", None) or type(self).scope
        if not self.scope:
            return True
        return super().allow_request(request, view)

    def get_cache_key(self, request, view):
        user = getattr(request, "user", None)
        ident = user.pk if user is not None and user.is_authenticated \
            else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class GenerateRateThrottle(CostRateThrottle):
    """``POST /api/generate/`` per user (``THROTTLE_GENERATE_RATE``, e.g. ``"60/min"``)."""

    scope = "generate"


class LoginRateThrottle(_SettingsRateThrottle):
    """``POST /api/auth/token/`` per client address (``THROTTLE_LOGIN_RATE``, e.g.
    ``"10/min"``), every attempt counted. Failed attempts per account and per address also
    lock out through django-axes (``LOGIN_FAILURE_LIMIT``), for this view and the login form."""

    scope = "login"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
