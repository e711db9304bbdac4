"""``POST /api/edit/`` and ``POST /api/upscale/``: thin views over ``images.services.edit``."""

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from core.schema import api_errors
from jobs.api.serializers import accepted_response

from ..services.edit import edit_create, upscale_create
from .serializers import GenerateResponseSerializer
from .serializers_edit import EditSerializer, UpscaleSerializer


def _accepted(gen) -> Response:
    return accepted_response(gen.job, id=gen.pk,
                             status_url=reverse("api:status", args=[gen.pk]))


@api_errors(404, 503)  # image_id of no image of yours; provider or broker down
class EditView(APIView):
    """Queue an img2img (or, with a mask, inpaint) edit of one of your images or an upload;
    answers 202 with the job. The result image links to its source (``source``)."""

    parser_classes = [JSONParser, MultiPartParser, FormParser]
    throttle_scope = "edit"  # THROTTLE_EDIT_RATE, per user

    @extend_schema(request={"application/json": EditSerializer,
                            "multipart/form-data": EditSerializer},
                   responses={202: GenerateResponseSerializer})
    def post(self, request):
        serializer = EditSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        image, mask = data.pop("image", None), data.pop("mask", None)
        gen = edit_create(user=request.user, params=data, image_upload=image, mask_upload=mask)
        return _accepted(gen)


@api_errors(404, 503)
class UpscaleView(APIView):
    """Queue an upscale (factor 2 or 4) of one of your images or an upload; answers 202."""

    parser_classes = [JSONParser, MultiPartParser, FormParser]
    throttle_scope = "upscale"  # THROTTLE_UPSCALE_RATE, per user

    @extend_schema(request={"application/json": UpscaleSerializer,
                            "multipart/form-data": UpscaleSerializer},
                   responses={202: GenerateResponseSerializer})
    def post(self, request):
        serializer = UpscaleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        image = data.pop("image", None)
        gen = upscale_create(user=request.user, params=data, image_upload=image)
        return _accepted(gen)
