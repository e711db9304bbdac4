"""Civitai update check, ignore, download of the newer version, manual relink, and the export
of the users' library data (docs/library.md). Library managers only (``loras.permissions``)."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.schema import api_errors
from jobs.api.serializers import JobAcceptedSerializer, accepted_response

from ..civitai import CivitaiError
from ..models import LoraModel
from ..permissions import ManagesLibrary, ManagesLibraryAlways
from ..services.export import library_export
from ..services.updates import (
    lora_civitai_link,
    lora_download_update,
    lora_update_ignore,
    update_check_start,
)
from .serializers import LoraDetailSerializer
from .serializers_civitai import DownloadSerializer
from .views_civitai import DownloadAcceptedSerializer, civitai_error_response


class UpdateIgnoreSerializer(serializers.Serializer):
    """Ignore one Civitai version (``version_id``) or every update of the model
    (``model: true``; ``false`` stops ignoring it)."""

    version_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1, required=False)
    model = serializers.BooleanField(required=False, allow_null=True, default=None)

    def validate(self, attrs):
        if attrs.get("version_id") is None and attrs.get("model") is None:
            raise serializers.ValidationError({"version_id": ["Give version_id or model."]})
        return attrs


class CivitaiLinkSerializer(serializers.Serializer):
    """A Civitai model-version URL (``https://civitai.com/models/1?modelVersionId=2``,
    ``.../model-versions/2``, ``.../api/download/models/2``) or its id."""

    url = serializers.CharField(max_length=2000, required=False)
    version_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1, required=False)

    def validate(self, attrs):
        if not attrs.get("url") and not attrs.get("version_id"):
            raise serializers.ValidationError({"url": ["Give url or version_id."]})
        return attrs


def _lora(pk) -> LoraModel:
    return get_object_or_404(LoraModel.objects.select_related("root"), pk=pk,
                             status=LoraModel.Status.PRESENT)


@api_errors(409, 503)  # a check runs; the broker is down
class UpdateCheckView(APIView):
    """Queue a Civitai update check of every LoRA with a Civitai model id (202 with the job;
    409 ``job_running`` while one is active)."""

    permission_classes = [ManagesLibrary]
    throttle_scope = "civitai_refresh_all"  # THROTTLE_CIVITAI_REFRESH_ALL_RATE, per user

    @extend_schema(request=None, responses={202: JobAcceptedSerializer})
    def post(self, request):
        return accepted_response(update_check_start(user=request.user))


class UpdateIgnoreView(APIView):
    """Ignore a newer version, or every update of this LoRA's model."""

    permission_classes = [ManagesLibrary]

    @extend_schema(request=UpdateIgnoreSerializer, responses=LoraDetailSerializer)
    def post(self, request, pk):
        serializer = UpdateIgnoreSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        lora = lora_update_ignore(lora=_lora(pk), **serializer.validated_data)
        return Response(LoraDetailSerializer(lora, context={"request": request}).data)


@api_errors(409, 429, 503)  # no update / file exists; Civitai rate limit; Civitai or broker
class DownloadUpdateView(APIView):
    """Download the newer Civitai version next to this LoRA's file (202 with the download)."""

    permission_classes = [ManagesLibrary]
    throttle_scope = "downloads"  # THROTTLE_DOWNLOADS_RATE, per user

    @extend_schema(request=None, responses={202: DownloadAcceptedSerializer})
    def post(self, request, pk):
        try:
            download = lora_download_update(lora=_lora(pk), user=request.user)
        except CivitaiError as exc:
            return civitai_error_response(exc)
        return accepted_response(download.job, id=download.pk,
                                 download=DownloadSerializer(download).data)


@api_errors(429, 503)  # Civitai rate-limits us, or is unreachable
class CivitaiLinkView(APIView):
    """Link this LoRA to a Civitai model version by URL or id and merge its metadata."""

    permission_classes = [ManagesLibrary]
    throttle_scope = "civitai_refresh"  # THROTTLE_CIVITAI_REFRESH_RATE, per user

    @extend_schema(request=CivitaiLinkSerializer, responses=LoraDetailSerializer)
    def post(self, request, pk):
        serializer = CivitaiLinkSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            lora = lora_civitai_link(lora=_lora(pk), **serializer.validated_data)
        except CivitaiError as exc:
            return civitai_error_response(exc)
        return Response(LoraDetailSerializer(lora, context={"request": request}).data)


class LibraryExportView(APIView):
    """What users added to the library, keyed by SHA-256 (``manage.py library_import``
    restores it; docs/library.md#export-and-import). Library managers only: it names who
    favourited what."""

    permission_classes = [ManagesLibraryAlways]

    @extend_schema(responses=dict)
    def get(self, request):
        response = Response(library_export())
        response["Content-Disposition"] = 'attachment; filename="atelier-library.json"'
        return response
