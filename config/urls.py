from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from django.views.i18n import JavaScriptCatalog
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerView,
)

from core.api import ObtainTokenView
from images.api.views import GenerateView, StatusView
from images.views_media import media_file

api_urls = [
    path("auth/token/", ObtainTokenView.as_view(), name="auth-token"),
    path("generate/", GenerateView.as_view(), name="generate"),
    path("status/<int:pk>/", StatusView.as_view(), name="status"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="redoc"),
    path("", include("loras.api.urls")),
    path("", include("providers.api.urls")),        # providers, health, models, enhance
    path("", include("example_images.api.urls")),   # example images (issue #4)
    path("", include("images.api.urls")),           # edit, upscale, narrate, usage... (#5, #6)
    path("", include("images.api.urls_lineage")),   # images/<id>/repeat/ (issue 15, lineage)
    path("", include("config.api_router")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),  # set_language: the language switcher
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),  # gettext() in JS
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api-auth/", include("rest_framework.urls")),
    path("api/", include((api_urls, "api"))),
    path("sdapi/v1/", include("compat.a1111.urls")),  # the A1111 API (issue 14)
    path("v1/", include("compat.openai.urls")),  # the OpenAI Images API (issue 14)
    path("loras/", include("loras.urls")),
    path("", include("images.urls")),
]

if settings.SERVE_MEDIA:
    urlpatterns += [
        # Generated files, with the visibility of the image (or edit request) that owns them.
        re_path(r"^media/(?P<path>.*)$", media_file, name="media"),
    ]

# Error pages without internals (JSON under /api/); used when DEBUG is off.
handler400 = "core.errors.bad_request"
handler403 = "core.errors.permission_denied"
handler404 = "core.errors.page_not_found"
handler500 = "core.errors.server_error"
