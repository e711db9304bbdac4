"""Civitai refresh (one LoRA, the whole library) and downloads: library managers only
(``loras.permissions``); everyone may list their own downloads."""

import math

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.response import Response
from rest_framework.views import APIView

from core.schema import api_errors
from jobs.api.serializers import JobAcceptedSerializer, accepted_response

from ..civitai import CivitaiError, sync_client
from ..models import Download, LoraModel
from ..permissions import ManagesLibrary
from ..services.civitai import civitai_refresh_all_create, lora_civitai_refresh
from ..services.downloads import download_create, download_list
from .serializers_civitai import (
    CivitaiRefreshAllSerializer,
    CivitaiRefreshResultSerializer,
    DownloadCreateSerializer,
    DownloadSerializer,
)


def civitai_error_response(exc: CivitaiError) -> Response:
    """The error body of ``exc`` with ``Retry-After`` (whole seconds) when it has one."""
    response = Response({"code": exc.code, "message": exc.message}, status=exc.status)
    if exc.retry_after is not None and exc.status in (429, 503):
        response["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    return response


@api_errors(429, 503)  # Civitai rate-limits us, or is unreachable
class LoraCivitaiRefreshView(APIView):
    """Look one LoRA up on Civitai now and fill its metadata and preview."""

    permission_classes = [ManagesLibrary]
    throttle_scope = "civitai_refresh"  # THROTTLE_CIVITAI_REFRESH_RATE, per user

    @extend_schema(request=None, responses=CivitaiRefreshResultSerializer)
    def post(self, request, pk):
        lora = get_object_or_404(LoraModel.objects.select_related("root"), pk=pk,
                                 status=LoraModel.Status.PRESENT)
        try:
            lora = lora_civitai_refresh(lora=lora, client=sync_client())
        except CivitaiError as exc:
            return civitai_error_response(exc)
        return Response(CivitaiRefreshResultSerializer(lora).data)


@api_errors(409, 503)  # a refresh runs; the broker is down
class CivitaiRefreshAllView(APIView):
    """Refresh Civitai metadata of the library as a Job (409 when one runs)."""

    permission_classes = [ManagesLibrary]
    throttle_scope = "civitai_refresh_all"  # THROTTLE_CIVITAI_REFRESH_ALL_RATE, per user

    @extend_schema(request=CivitaiRefreshAllSerializer, responses={202: JobAcceptedSerializer})
    def post(self, request):
        serializer = CivitaiRefreshAllSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job = civitai_refresh_all_create(user=request.user, **serializer.validated_data)
        return accepted_response(job)


class DownloadAcceptedSerializer(JobAcceptedSerializer):
    """The 202 envelope of a new download, with the download row (``id`` is its pk)."""

    download = DownloadSerializer()


class DownloadListCreateView(generics.ListAPIView):
    """Your downloads with their job snapshots; POST queues a new one (202)."""

    permission_classes = [ManagesLibrary]
    serializer_class = DownloadSerializer
    queryset = Download.objects.none()  # for the schema; the real one is per user
    throttle_scope = "downloads"  # THROTTLE_DOWNLOADS_RATE, per user (POST only)

    def get_queryset(self):
        return download_list(user=self.request.user)

    @extend_schema(request=DownloadCreateSerializer, responses={202: DownloadAcceptedSerializer})
    @api_errors(404, 409, 429, 503)  # unknown version or root; file exists; Civitai; broker
    def post(self, request):
        serializer = DownloadCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            download = download_create(user=request.user,
                                       model_version_id=data.get("model_version_id"),
                                       url=data.get("url"), root_id=data.get("root"),
                                       folder=data.get("folder"))
        except CivitaiError as exc:
            return civitai_error_response(exc)
        return accepted_response(download.job, id=download.pk,
                                 download=DownloadSerializer(download).data)
