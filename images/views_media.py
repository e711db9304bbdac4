"""``/media/``: generated files served with the visibility of the row that owns them.

Before this view, ``/media/`` was a plain static serve: a private image was only protected by
its random file name. Now every file under ``MEDIA_ROOT`` is served only when a row claims it
and the requester may read that row (the same rules as the API): an image, its thumbnail and its
narration follow the image (public, or its owner); the input image and mask of an edit follow
their request (owner only). Anything else is 404, as is a file of someone else's private image
(404, not 403, so its existence is not revealed). Works with the session cookie or
``Authorization: Token <key>``.

In production with ``SERVE_MEDIA`` off, the web server that serves ``MEDIA_ROOT`` must apply the
same rules (e.g. nginx ``internal`` + ``X-Accel-Redirect``) or use ``/api/images/<id>/file/``.
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import Q
from django.http import Http404
from django.views.static import serve
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from .models import GenerationRequest, Image


def _requester_id(request) -> int | None:
    """The id of the logged-in user (session) or of the token's owner; None when anonymous."""
    if request.user.is_authenticated:
        return request.user.pk
    try:
        found = TokenAuthentication().authenticate(request)
    except AuthenticationFailed:
        return None
    return found[0].pk if found else None


def media_file(request, path: str):
    """Serve ``MEDIA_ROOT/path`` (a relative path, as stored in the file fields) when the
    requester may read the row that owns it.

    Raises:
        Http404: no row claims the file, or the requester may not read it; also for traversal
            attempts, which ``django.views.static.serve`` refuses.
    """
    uid = _requester_id(request)
    image = (Image.objects.filter(Q(file=path) | Q(thumbnail=path) | Q(audio=path))
             .only("id", "user_id", "is_public").first())
    if image is not None:
        allowed = image.is_public or (uid is not None and image.user_id == uid)
    else:
        owner = (GenerationRequest.objects.filter(Q(init_image=path) | Q(mask=path))
                 .values_list("user_id", flat=True).first())
        allowed = owner is not None and owner == uid
    if not allowed:
        raise Http404("No such file.")
    return serve(request, path, document_root=settings.MEDIA_ROOT)
