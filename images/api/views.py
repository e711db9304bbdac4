from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from ..models import Image
from ..selectors import generation_request_get, image_get, image_list
from ..services import generation_create
from .serializers import (
    GenerateResponseSerializer,
    GenerateSerializer,
    ImageSerializer,
    StatusSerializer,
)


class GenerateView(APIView):
    """Queue a txt2img generation; answers 202 with the job to follow."""

    @extend_schema(request=GenerateSerializer, responses={202: GenerateResponseSerializer})
    def post(self, request):
        serializer = GenerateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        gen = generation_create(user=request.user, params=serializer.validated_data)
        return Response(
            {"id": gen.pk, "job": str(gen.job_id), "status": gen.job.status,
             "status_url": reverse("api:status", args=[gen.pk]),
             "ws_url": f"/ws/jobs/{gen.job_id}/"},
            status=status.HTTP_202_ACCEPTED,
        )


class StatusView(APIView):
    """The job snapshot of a generation request plus its images."""

    @extend_schema(responses=StatusSerializer)
    def get(self, request, pk):
        gen = generation_request_get(user=request.user, pk=pk)
        return Response(StatusSerializer(gen).data)


class ImageViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Your generated images, newest first."""

    serializer_class = ImageSerializer
    queryset = Image.objects.none()  # for the schema; requests use get_queryset()

    def get_queryset(self):
        return image_list(user=self.request.user)

    def get_object(self):
        return image_get(user=self.request.user, pk=self.kwargs["pk"])
