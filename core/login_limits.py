"""Login lockout (django-axes) answers in this project's shapes.

django-axes counts failed logins per account and per client address (settings
``AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]``, ``LOGIN_FAILURE_LIMIT`` failures,
``LOGIN_LOCKOUT_MINUTES`` cool-off) for every ``django.contrib.auth.authenticate`` call with a
request: the login form (``/accounts/login/``), the admin login and ``POST /api/auth/token/``.
The client address is :func:`core.client_ip.client_ip` (``AXES_CLIENT_IP_CALLABLE``).

:func:`lockout_response` is ``AXES_LOCKOUT_CALLABLE``: 429 with ``Retry-After``; JSON
``{"code": "locked_out", "message"}`` under ``/api/``, a page otherwise.
"""

from __future__ import annotations

import math

from axes.backends import AxesStandaloneBackend
from django.http import JsonResponse
from django.shortcuts import render


def _cool_off_seconds(request) -> int:
    from axes.helpers import get_cool_off

    cool_off = get_cool_off(request)
    return max(1, math.ceil(cool_off.total_seconds())) if cool_off else 3600


def lockout_response(request, original_response=None, credentials=None):
    """The answer to a locked-out login attempt (called by ``axes.middleware.AxesMiddleware``).

    Args:
        request: the Django ``HttpRequest``.
        original_response: the view's own answer (ignored).
        credentials: what was tried (ignored; never echoed).
    """
    seconds = _cool_off_seconds(request)
    minutes = max(1, math.ceil(seconds / 60))
    message = (f"Too many failed login attempts for this account or address; try again in "
               f"{minutes} minute{'s' if minutes != 1 else ''}.")
    if request.path.startswith("/api/"):
        response = JsonResponse({"code": "locked_out", "message": message}, status=429)
    else:
        response = render(request, "registration/locked_out.html", {"message": message},
                          status=429)
    response["Retry-After"] = str(seconds)
    return response



class LoginLockoutBackend(AxesStandaloneBackend):
    """django-axes' ``AxesStandaloneBackend`` for every ``authenticate()`` that carries a request
    (all HTTP logins); one without a request (a management command, Django's test
    ``Client.login``) is passed on to the next backend instead of failing with axes'
    ``AxesBackendRequestParameterRequired``."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
