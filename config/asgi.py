"""ASGI entry point: HTTP through Django, WebSockets through Channels (``/ws/jobs/...``).

WebSocket origin check: a browser always sends ``Origin`` (RFC 6455 section 4.1; the Fetch
standard forbids scripts to change it), so a connection from another site's page carrying
our session cookie is refused by channels' ``AllowedHostsOriginValidator``. A client that
sends no ``Origin`` is not a browser page; when it presents an API token (``?token=``, read by
``jobs.auth``) it is accepted without the check, and its cookies are ignored so that only the
token can authenticate it (a Python ``websockets`` client, a bot, a script).
"""

import os
from urllib.parse import parse_qs

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from core.body_limit import BodyLimitMiddleware  # noqa: E402
from jobs.auth import TokenAuthMiddlewareStack  # noqa: E402
from jobs.routing import websocket_urlpatterns  # noqa: E402


def _presents_token(scope) -> bool:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return bool((query.get("token") or [""])[0])


class TokenOrOriginValidator:
    """``AllowedHostsOriginValidator`` for every WebSocket, except one with no ``Origin``
    header that presents a token: passed on with its ``Cookie`` header removed (see the module
    doc). A bad token then meets the consumer's 4401 like any unauthenticated socket."""

    def __init__(self, inner):
        self.inner = inner
        self.checked = AllowedHostsOriginValidator(inner)

    async def __call__(self, scope, receive, send):
        headers = scope.get("headers") or []
        if not any(name == b"origin" for name, _ in headers) and _presents_token(scope):
            scope = dict(scope, headers=[(n, v) for n, v in headers if n != b"cookie"])
            return await self.inner(scope, receive, send)
        return await self.checked(scope, receive, send)


http_app = ASGIStaticFilesHandler(django_asgi_app) if settings.SERVE_MEDIA else django_asgi_app
# Bodies over REQUEST_BODY_MAX_BYTES are refused before Django spools them to disk.
http_app = BodyLimitMiddleware(http_app)

application = ProtocolTypeRouter(
    {
        "http": http_app,
        "websocket": TokenOrOriginValidator(
            TokenAuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
