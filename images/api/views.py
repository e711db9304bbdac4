from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from core.exceptions import ApplicationError
from core.schema import api_errors
from core.throttling import GenerateRateThrottle
from jobs.api.serializers import accepted_response

from ..selectors import generation_request_get
from ..services import generation_create
from .serializers import (
    GenerateResponseSerializer,
    GenerateSerializer,
    StatusSerializer,
)


@api_errors(409, 503)  # Idempotency-Key reused; provider or broker down
class GenerateView(APIView):
    """Queue a txt2img generation; answers 202 with the job to follow.

    A1111's fields (``sampler``/``sampler_name``, ``scheduler``, ``clip_skip``, ``vae``, hires
    fix: ``enable_hr``, ``hr_scale``, ``hr_upscaler``, ``hr_second_pass_steps``,
    ``denoising_strength``) are checked before anything is queued (400 naming the field and the
    allowed values; docs/samplers.md).

    ``Idempotency-Key`` header (optional, 1-255 characters): repeating a request with the same
    key returns the first request's answer (same job); another body under the same key is 409
    ``idempotency_key_reused``. Rate-limited per user (``THROTTLE_GENERATE_RATE``, 429)."""

    throttle_classes = [GenerateRateThrottle]

    @extend_schema(request=GenerateSerializer, responses={202: GenerateResponseSerializer},
                   parameters=[OpenApiParameter(
                       "Idempotency-Key", str, OpenApiParameter.HEADER, required=False,
                       description="Client-chosen key (at most 255 characters): a repeated "
                                   "request returns the first one's job.")])
    def post(self, request):
        serializer = GenerateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key = request.headers.get("Idempotency-Key", "").strip()
        if len(key) > 255:
            raise ApplicationError("invalid", "Idempotency-Key: at most 255 characters.",
                                   fields={"Idempotency-Key": ["At most 255 characters."]})
        gen = generation_create(user=request.user, params=serializer.validated_data,
                                idempotency_key=key)
        return accepted_response(gen.job, id=gen.pk,
                                 status_url=reverse("api:status", args=[gen.pk]))


class StatusView(APIView):
    """The job snapshot of a generation request plus its images."""

    @extend_schema(responses=StatusSerializer)
    def get(self, request, pk):
        gen = generation_request_get(user=request.user, pk=pk)
        return Response(StatusSerializer(gen).data)



# The image library (list, detail, patch, delete, narrate, file) is
# ``images.api.views_library.ImageViewSet``, registered in config/api_router.py.
