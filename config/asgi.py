"""ASGI entry point: HTTP through Django, WebSockets through Channels (``/ws/jobs/...``)."""

import os

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

http_app = ASGIStaticFilesHandler(django_asgi_app) if settings.SERVE_MEDIA else django_asgi_app
# Bodies over REQUEST_BODY_MAX_BYTES are refused before Django spools them to disk.
http_app = BodyLimitMiddleware(http_app)

application = ProtocolTypeRouter(
    {
        "http": http_app,
        "websocket": AllowedHostsOriginValidator(
            TokenAuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
