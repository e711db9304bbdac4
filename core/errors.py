"""Error pages without internals (``handler404``/``handler500`` ... in ``config/urls.py``).

Pages get ``templates/404.html`` / ``500.html``; paths under ``/api/`` get the API's error shape
``{"code", "message"}`` (``not_found``, ``permission_denied``, ``bad_request``,
``internal_error``), so a client parsing JSON never receives HTML. With ``DEBUG`` off Django
calls these instead of its technical pages, which list every URL pattern and setting.
"""

from __future__ import annotations

from django.http import JsonResponse
from django.views import defaults


def _api(request) -> bool:
    return request.path.startswith("/api/")


def _json(code: str, message: str, status: int) -> JsonResponse:
    return JsonResponse({"code": code, "message": message}, status=status)


def page_not_found(request, exception=None):
    if _api(request):
        return _json("not_found", "Not found.", 404)
    return defaults.page_not_found(request, exception)


def permission_denied(request, exception=None):
    if _api(request):
        return _json("permission_denied",
                     "You do not have permission to perform this action.", 403)
    return defaults.permission_denied(request, exception)


def bad_request(request, exception=None):
    if _api(request):
        return _json("bad_request", "The request could not be understood.", 400)
    return defaults.bad_request(request, exception)


def server_error(request):
    if _api(request):
        return _json("internal_error", "An unexpected error occurred; it has been logged.", 500)
    return defaults.server_error(request)
