"""``POST /api/images/bulk/`` and ``POST /api/images/zip/``: the gallery's bulk actions on
your own images, thin views over ``images.services.bulk``.

Both take ``ids`` (1 to 500 image ids of yours; one id that is not yours makes the call a 404
``not_found`` that changes nothing). Errors are ``{"code", "message", "fields"?}``. The
bodies, errors and ZIP layout: docs/gallery.md#selecting-and-bulk-actions.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from core.schema import api_errors

from ..services.bulk import BULK_ACTIONS, BULK_MAX, images_bulk, images_zip_plan, zip_stream

_IDS_HELP = f"Ids of your images, 1 to {BULK_MAX} (more: 400 ``too_many``)."


def _ids_field():
    # No max_length here: the service answers an over-long list with code ``too_many``.
    return serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
                                 allow_empty=False, max_length=10_000, help_text=_IDS_HELP)


class ImageBulkSerializer(serializers.Serializer):
    """``{"action", "ids": [int], "project": int | null}``; ``project`` is required for
    ``move`` (``null`` takes the images out of their project)."""

    action = serializers.ChoiceField(choices=BULK_ACTIONS)
    ids = _ids_field()
    project = serializers.IntegerField(min_value=1, max_value=2**63 - 1, allow_null=True,
                                       required=False)

    def validate(self, attrs):
        if attrs["action"] == "move" and "project" not in attrs:
            raise serializers.ValidationError(
                {"project": ["Name the project to move to (null: no project)."]})
        return attrs


class ImageBulkResultSerializer(serializers.Serializer):
    action = serializers.CharField()
    count = serializers.IntegerField()
    ids = serializers.ListField(child=serializers.IntegerField())


class ImageZipSerializer(serializers.Serializer):
    """``{"ids": [int]}`` as JSON, or a form post with ``ids`` repeated (a plain HTML form,
    so the browser streams the download to disk)."""

    ids = _ids_field()


@api_errors(404)
class ImageBulkView(APIView):
    """Delete, move to a project, publish/unpublish or (un)favourite up to 500 of your
    images at once, all or nothing. Deletes remove the files as a single delete does."""

    parser_classes = [JSONParser, FormParser, MultiPartParser]

    @extend_schema(request=ImageBulkSerializer, responses={200: ImageBulkResultSerializer})
    def post(self, request):
        serializer = ImageBulkSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        result = images_bulk(user=request.user, action=data["action"], ids=data["ids"],
                             project=data.get("project"))
        return Response(result)


async def _async_chunks(chunks):
    """``chunks`` (a blocking iterator) as an async iterator, one chunk per thread hop, so
    that under ASGI the response streams instead of being collected in memory first
    (Django's ASGI handler lists a synchronous iterator)."""
    end = object()
    try:
        while True:
            chunk = await sync_to_async(next, thread_sensitive=False)(chunks, end)
            if chunk is end:
                return
            yield chunk
    finally:  # the client went away: close the open file now, not at garbage collection
        await sync_to_async(chunks.close, thread_sensitive=False)()


@api_errors(404)
class ImageZipView(APIView):
    """A ZIP of the PNG files of up to 500 of your images, streamed as it is written
    (``<id>-<prompt words>.png``, each with its A1111 ``parameters`` chunk as generated)."""

    parser_classes = [JSONParser, FormParser, MultiPartParser]

    @extend_schema(request=ImageZipSerializer,
                   responses={(200, "application/zip"): OpenApiResponse(bytes, "The archive.")})
    def post(self, request):
        serializer = ImageZipSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        members = images_zip_plan(user=request.user, ids=serializer.validated_data["ids"])
        chunks = zip_stream(members)
        asgi = isinstance(request._request, ASGIRequest)
        response = StreamingHttpResponse(_async_chunks(chunks) if asgi else chunks,
                                         content_type="application/zip")
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="atelier-images-{stamp}.zip"'
        response["X-Image-Count"] = str(len(members))
        return response
