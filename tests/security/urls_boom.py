"""The project's URLs plus two views that fail, for the 500-page tests."""

from django.urls import path

from config.urls import handler400, handler403, handler404, handler500  # noqa: F401
from config.urls import urlpatterns as project_urls


def boom(request):
    raise RuntimeError("secret internals: /srv/atelier/var/atelier.sqlite3")


urlpatterns = [path("boom/", boom), path("api/boom/", boom), *project_urls]
