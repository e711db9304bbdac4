"""The example-images API (thin: validate, call a service, serialize).

Bulk download: ``/api/example-images/download/``, ``status/``, ``pause/``, ``resume/``,
``force/``; files: ``import/``, ``has/?lora=``, ``open-folder/?lora=``,
``/api/example-images/<id>/file/`` (the image bytes, for authenticated users only; files are
not under MEDIA_ROOT); per LoRA: ``/api/loras/<id>/example-images/`` (list),
``.../<image_id>/`` (DELETE), ``.../<image_id>/set-preview/``, ``.../generate/``.
Permissions (``loras.permissions``, docs/library.md#who-may-change-the-library): every
signed-in user reads (status, has, open-folder, file, list). What writes or deletes files of
the shared library needs a library manager (staff or ``loras.manage_library``; 403
``permission_denied``): the bulk download and its pause/resume/force (it fills
EXAMPLE_IMAGES_ROOT for every LoRA, and it is "downloading" like a model download), import,
delete, set-preview (writes ``<stem>.preview.*`` into the LoRA's folder) and generate (stores
example images of a shared LoRA).
"""

from __future__ import annotations

import os

from django.http import FileResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from core.exceptions import ApplicationError
from core.limits import uploads_check
from core.schema import api_errors
from jobs.api.serializers import JobAcceptedSerializer, JobSerializer, accepted_response
from jobs.snapshots import job_snapshot
from loras.api.serializers import LoraDetailSerializer
from loras.permissions import ManagesLibrary
from loras.selectors import lora_get

from .. import selectors
from ..files import CONTENT_TYPES, example_path
from ..services.download import (
    example_download_pause,
    example_download_resume,
    example_download_start,
)
from ..services.files import (
    example_delete,
    example_import,
    example_open_folder,
    example_set_preview,
)
from ..services.generate import example_generate_start
from .serializers import (
    ExampleDownloadStartSerializer,
    ExampleForceSerializer,
    ExampleGenerateSerializer,
    ExampleImageSerializer,
    ExampleImportJsonSerializer,
    ExampleLoraQuerySerializer,
)

LORA_PARAM = OpenApiParameter("lora", int, required=True, description="LoRA id")


def _valid(serializer_class, data):
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _options(data: dict) -> dict:
    return {k: data.get(k) for k in ("limit_per_model", "nsfw_max", "optimize")}


@api_errors(404, 409, 503)  # an unknown LoRA id; a download runs; the broker is down
class DownloadView(APIView):
    permission_classes = [ManagesLibrary]
    throttle_scope = "example_download"  # THROTTLE_EXAMPLE_DOWNLOAD_RATE, per user
    @extend_schema(request=ExampleDownloadStartSerializer, responses={202: JobAcceptedSerializer})
    def post(self, request):
        """Start one download job over all LoRAs or ``lora_ids`` (409 ``job_running``)."""
        data = _valid(ExampleDownloadStartSerializer, request.data)
        job = example_download_start(user=request.user, lora_ids=data.get("lora_ids"),
                                     **_options(data))
        return accepted_response(job)


@api_errors(404, 409, 503)
class ForceView(APIView):
    permission_classes = [ManagesLibrary]
    throttle_scope = "example_download"
    @extend_schema(request=ExampleForceSerializer, responses={202: JobAcceptedSerializer})
    def post(self, request):
        """Download the examples of one LoRA even when it already has some."""
        data = _valid(ExampleForceSerializer, request.data)
        lora_get(pk=data["lora_id"])
        job = example_download_start(user=request.user, lora_ids=[data["lora_id"]], force=True,
                                     **_options(data))
        return accepted_response(job)


STATUS_RESPONSE = inline_serializer("ExampleDownloadStatus", {
    "status": serializers.CharField(), "job": JobSerializer(allow_null=True),
    "result": serializers.DictField()})


class StatusView(APIView):
    @extend_schema(responses=STATUS_RESPONSE)
    def get(self, request):
        """The download job's snapshot (the one the WebSocket pushes): ``result`` holds
        processed/total models, images, current model, errors, speed (images/s), ETA (s).
        ``status`` is ``idle`` when no download ever ran."""
        job = selectors.download_job_latest()
        if job is None:
            return Response({"status": "idle", "job": None, "result": {}})
        snapshot = job_snapshot(job)
        return Response({"status": job.status, "job": snapshot, "result": job.result})


class PauseView(APIView):
    permission_classes = [ManagesLibrary]
    @extend_schema(request=None, responses=JobSerializer)
    def post(self, request):
        """Pause the running download (400 ``download_not_running``)."""
        return Response(JobSerializer(example_download_pause()).data)


@api_errors(503)
class ResumeView(APIView):
    permission_classes = [ManagesLibrary]
    throttle_scope = "example_download"
    @extend_schema(request=None, responses=JobSerializer)
    def post(self, request):
        """Resume the paused download (400 ``download_not_running``)."""
        return Response(JobSerializer(example_download_resume()).data)


@api_errors(404)
class ImportView(APIView):
    permission_classes = [ManagesLibrary]
    throttle_scope = "example_import"  # THROTTLE_EXAMPLE_IMPORT_RATE, per user
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(request=inline_serializer("ExampleImport", {
        "lora": serializers.IntegerField(), "files": serializers.ListField(
            child=serializers.FileField(), required=False),
        "paths": serializers.ListField(child=serializers.CharField(), required=False)}),
        responses={201: ExampleImageSerializer(many=True)})
    def post(self, request):
        """Import multipart ``files`` or JSON ``paths`` (inside EXAMPLE_IMAGES_IMPORT_ROOTS)
        as example images of LoRA ``lora``; nothing is stored when any file is refused."""
        uploads = request.FILES.getlist("files") if hasattr(request, "FILES") else []
        body = request.data if hasattr(request.data, "get") else {}  # a JSON list or scalar
        paths = body.get("paths") if isinstance(body.get("paths"), list) else []
        # REQUEST_MAX_FILES and REQUEST_MAX_PIXELS (from the headers) before any decoding.
        uploads_check(uploads, field="files", other_files=len(paths))
        data = _valid(ExampleImportJsonSerializer, {
            "lora": body.get("lora"),
            **({"paths": body.get("paths")} if not uploads and
               body.get("paths") is not None else {})})
        lora = lora_get(pk=data["lora"])
        rows = example_import(lora=lora, uploads=uploads, paths=data.get("paths"))
        return Response(ExampleImageSerializer(rows, many=True).data,
                        status=status.HTTP_201_CREATED)


@api_errors(404)
class HasView(APIView):
    @extend_schema(parameters=[LORA_PARAM], responses=inline_serializer("ExampleHas", {
        "lora": serializers.IntegerField(), "has": serializers.BooleanField(),
        "count": serializers.IntegerField()}))
    def get(self, request):
        """Whether the LoRA has example images, and how many."""
        lora = lora_get(pk=_valid(ExampleLoraQuerySerializer, request.query_params)["lora"])
        count = selectors.example_list(lora=lora).count()
        return Response({"lora": lora.pk, "has": count > 0, "count": count})


@api_errors(404)
class OpenFolderView(APIView):
    @extend_schema(parameters=[LORA_PARAM], responses=inline_serializer("ExampleFolder", {
        "folder": serializers.CharField(help_text="Relative to EXAMPLE_IMAGES_ROOT: the "
                                        "LoRA's SHA-256."),
        "path": serializers.CharField(help_text="Where to find it: relative to the LoRA "
                                      "library root holding the examples root, else to the "
                                      "examples root's parent (e.g. example_images/<sha256>)."),
        "images": serializers.IntegerField(help_text="Example images stored in it."),
        "exists": serializers.BooleanField(),
        "opened": serializers.BooleanField()}))
    def get(self, request):
        """The LoRA's example folder relative to EXAMPLE_IMAGES_ROOT; opened in the desktop
        file manager only when EXAMPLE_IMAGES_OPEN_FOLDER is on and the request is local."""
        lora = lora_get(pk=_valid(ExampleLoraQuerySerializer, request.query_params)["lora"])
        local = request.META.get("REMOTE_ADDR") in ("127.0.0.1", "::1")
        return Response(example_open_folder(lora=lora, local_request=local))


class FileView(APIView):
    @extend_schema(responses={(200, "image/*"): bytes})
    def get(self, request, image_id):
        """The image file of example image ``image_id``."""
        image = selectors.example_get_any(pk=image_id)
        path = example_path(image.file)
        if not os.path.isfile(path):
            raise ApplicationError("file_missing", "The image file is missing.", status=404)
        ext = path.rsplit(".", 1)[-1]
        response = FileResponse(open(path, "rb"),
                                content_type=CONTENT_TYPES.get(ext, "application/octet-stream"))
        response["Cache-Control"] = "private, max-age=86400"
        return response


class LoraExamplesView(APIView):
    @extend_schema(responses=ExampleImageSerializer(many=True))
    def get(self, request, lora_id):
        """The example images of a LoRA, in order."""
        lora = lora_get(pk=lora_id)
        rows = selectors.example_list(lora=lora).select_related("lora")
        return Response(ExampleImageSerializer(rows, many=True).data)


class LoraExampleDetailView(APIView):
    permission_classes = [ManagesLibrary]
    @extend_schema(responses={204: None})
    def delete(self, request, lora_id, image_id):
        """Delete the example image: its file and row together."""
        image = selectors.example_get(lora=lora_get(pk=lora_id), pk=image_id)
        example_delete(image=image)
        return Response(status=status.HTTP_204_NO_CONTENT)


class LoraExampleSetPreviewView(APIView):
    permission_classes = [ManagesLibrary]
    @extend_schema(request=None, responses=LoraDetailSerializer)
    def post(self, request, lora_id, image_id):
        """Copy this example image as the LoRA's preview."""
        image = selectors.example_get(lora=lora_get(pk=lora_id), pk=image_id)
        lora = example_set_preview(image=image)
        return Response(LoraDetailSerializer(lora, context={"request": request}).data)


@api_errors(503)  # the broker is down
class LoraExampleGenerateView(APIView):
    permission_classes = [ManagesLibrary]
    throttle_scope = "example_generate"  # THROTTLE_EXAMPLE_GENERATE_RATE, per user
    @extend_schema(request=ExampleGenerateSerializer, responses={202: JobAcceptedSerializer})
    def post(self, request, lora_id):
        """Generate example images of the LoRA (prompt × weight) with a model profile."""
        data = _valid(ExampleGenerateSerializer, request.data)
        job = example_generate_start(user=request.user, lora=lora_get(pk=lora_id),
                                     model=data.get("model") or None,
                                     weights=data.get("weights"), prompts=data.get("prompts"),
                                     seed=data.get("seed"))
        return accepted_response(job)
