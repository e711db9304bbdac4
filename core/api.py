"""Auth endpoint: ``POST /api/auth/token/`` with ``{username, password}`` returns ``{token}``."""

from django.contrib.auth.signals import user_logged_in
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.response import Response

from .throttling import LoginRateThrottle


class ObtainTokenView(ObtainAuthToken):
    """Exchange a username and password for a DRF token (``Authorization: Token <key>``).

    Rate-limited per client address (``THROTTLE_LOGIN_RATE``): 429 ``throttled`` with
    ``Retry-After``. Failed attempts lock the account and the address out
    (``LOGIN_FAILURE_LIMIT``, django-axes): 429 ``locked_out`` with ``Retry-After``."""

    throttle_classes = [LoginRateThrottle]

    @extend_schema(
        request=inline_serializer("TokenRequest", {"username": serializers.CharField(),
                                                   "password": serializers.CharField()}),
        responses=inline_serializer("TokenResponse", {"token": serializers.CharField()}),
    )
    def post(self, request, *args, **kwargs):
        # authenticate() gets the Django request: django-axes marks a locked-out attempt on it,
        # and its middleware (which sees only the Django request) turns that into the 429.
        serializer = self.serializer_class(data=request.data,
                                           context={"request": request._request})
        serializer.is_valid(raise_exception=True)
        user = serializer.validated_data["user"]
        # A login like the form's: last_login is set and django-axes clears the failure count.
        user_logged_in.send(sender=type(user), request=request._request, user=user)
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})
