"""Auth endpoint: ``POST /api/auth/token/`` with ``{username, password}`` returns ``{token}``."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.views import ObtainAuthToken

from .throttling import LoginRateThrottle


class ObtainTokenView(ObtainAuthToken):
    """Exchange a username and password for a DRF token (``Authorization: Token <key>``).

    Rate-limited per client address (``THROTTLE_LOGIN_RATE``): 429 ``throttled`` with
    ``Retry-After``."""

    throttle_classes = [LoginRateThrottle]

    @extend_schema(
        request=inline_serializer("TokenRequest", {"username": serializers.CharField(),
                                                   "password": serializers.CharField()}),
        responses=inline_serializer("TokenResponse", {"token": serializers.CharField()}),
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)
