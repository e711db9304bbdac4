"""Authentication as A1111 and OpenAI clients send it.

- ``Authorization: Basic base64(username:secret)``: what A1111 clients send for a server started
  with ``--api-auth user:pass`` (webuiapi ``set_auth``, Open WebUI ``AUTOMATIC1111_API_AUTH``,
  SillyTavern "SD WebUI auth"). ``secret`` is the user's password or their API token (the
  token of ``POST /api/auth/token/``), so no password has to be stored in a client. Password
  attempts go through ``django.contrib.auth.authenticate`` with the request, so failed ones
  count towards the login lockout (django-axes, ``LOGIN_FAILURE_LIMIT``); a locked-out
  account or address is answered 401 like any refused login (not axes' 429 page).
- ``Authorization: Bearer <token>``: what the OpenAI SDK sends (``api_key``).
- ``Authorization: Token <token>``: the native API's scheme, accepted too.

No credentials: 401 with ``WWW-Authenticate`` (``Basic`` on the A1111 API, ``Bearer`` on the
OpenAI API), as those servers answer. Wrong ones: 401 as well.
"""

from __future__ import annotations

import base64
import binascii
from hmac import compare_digest

from django.contrib.auth import authenticate
from django.core.exceptions import PermissionDenied
from django.http.multipartparser import MultiPartParserError
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

BAD_CREDENTIALS = "Incorrect username or password"  # A1111's own words (modules/api/api.py)
LOCKED_OUT = ("Too many failed login attempts for this account or address; try again later "
              "(LOGIN_LOCKOUT_MINUTES), or use your API token.")


def _token_user(key: str):
    from rest_framework.authtoken.models import Token

    token = Token.objects.select_related("user").filter(key=key).first()
    return token.user if token is not None else None


def _basic_user(request, username: str, secret: str):
    """The user ``username`` when ``secret`` is their API token or their password, else None."""
    user = _token_user(secret) if secret else None
    if user is not None and compare_digest(user.get_username(), username):
        return user
    django_request = request._request
    try:  # django-axes records the form fields of a failed login: a broken body is a 400 here
        django_request.POST  # noqa: B018
    except MultiPartParserError:
        raise exceptions.ParseError("Malformed multipart body.") from None
    try:  # a password: counted by the login lockout
        user = authenticate(request=django_request, username=username, password=secret)
    except PermissionDenied:  # django-axes refuses a locked-out account or address
        user = None
    if getattr(django_request, "axes_locked_out", False):
        # Answered here as a refused login (401, the client's credentials prompt) instead of
        # axes' 429 page: A1111 clients only know 401 for "credentials refused".
        django_request.axes_locked_out = False
        raise exceptions.AuthenticationFailed(LOCKED_OUT)
    return user


class CompatAuthentication(BaseAuthentication):
    """HTTP Basic (username + password or API token), ``Bearer`` or ``Token`` (API token).

    Raises:
        AuthenticationFailed: 401 for a malformed header, unknown token, wrong password or an
            inactive user.
    """

    #: The ``WWW-Authenticate`` challenge of a 401 answer.
    challenge = 'Basic realm="Atelier"'

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts:
            return None
        scheme = parts[0].lower()
        if scheme not in (b"basic", b"bearer", b"token"):
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(BAD_CREDENTIALS)
        try:
            value = parts[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(BAD_CREDENTIALS) from None
        if scheme == b"basic":
            try:
                username, _, secret = base64.b64decode(value, validate=True).decode().partition(
                    ":")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                raise exceptions.AuthenticationFailed(BAD_CREDENTIALS) from None
            user = _basic_user(request, username, secret)
        else:
            user = _token_user(value)
        if user is None or not user.is_active:
            raise exceptions.AuthenticationFailed(BAD_CREDENTIALS)
        return user, None

    def authenticate_header(self, request):
        return self.challenge


class BearerAuthentication(CompatAuthentication):
    """:class:`CompatAuthentication` whose 401 challenge is ``Bearer`` (the OpenAI API)."""

    challenge = 'Bearer realm="Atelier"'
