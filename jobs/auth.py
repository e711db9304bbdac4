"""WebSocket authentication: the Django session, or a DRF token as ``?token=<key>``."""

from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware


@database_sync_to_async
def _user_for_token(key: str):
    from rest_framework.authtoken.models import Token

    try:
        return Token.objects.select_related("user").get(key=key).user
    except Token.DoesNotExist:
        return None


class TokenAuthMiddleware(BaseMiddleware):
    """Sets ``scope["user"]`` from ``?token=`` when present and valid (else keeps the session
    user set by ``AuthMiddlewareStack``)."""

    async def __call__(self, scope, receive, send):
        query = parse_qs(scope.get("query_string", b"").decode())
        key = (query.get("token") or [""])[0]
        if key:
            user = await _user_for_token(key)
            if user is not None and user.is_active:
                scope = dict(scope, user=user)
        return await super().__call__(scope, receive, send)


def TokenAuthMiddlewareStack(inner):  # noqa: N802 - named like channels' AuthMiddlewareStack
    """Session auth, then token auth on top."""
    return AuthMiddlewareStack(TokenAuthMiddleware(inner))
