"""``POST /api/images/<id>/repeat/``: generate again — a thin view over
``images.services.lineage.image_repeat`` (issue 15)."""

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.parsers import FormParser, JSONParser
from rest_framework.views import APIView

from core.schema import api_errors
from jobs.api.serializers import accepted_response

from ..selectors import image_get_for_owner
from ..services.lineage import image_repeat
from .serializers import GenerateResponseSerializer


class RepeatSerializer(serializers.Serializer):
    """``new_seed``: a random seed instead of the image's (ignored by an upscale)."""

    new_seed = serializers.BooleanField(required=False, default=False)


@api_errors(404, 503)  # not your image; provider or broker down
class ImageRepeatView(APIView):
    """Queue the operation that made one of your images again with the same inputs: a txt2img
    (sampler, schedule type, clip skip, VAE, hires fix included), an img2img/inpaint of the same
    source with its mask, strength and LoRAs, or an upscale of the same source by the same
    factor and upscaler. Answers 202 with the job of the new request."""

    parser_classes = [JSONParser, FormParser]
    throttle_scope = "edit"  # THROTTLE_EDIT_RATE, per user

    @extend_schema(request=RepeatSerializer, responses={202: GenerateResponseSerializer})
    def post(self, request, pk: int):
        serializer = RepeatSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        image = image_get_for_owner(user=request.user, pk=pk)
        gen = image_repeat(user=request.user, image=image,
                           new_seed=serializer.validated_data["new_seed"])
        return accepted_response(gen.job, id=gen.pk,
                                 status_url=reverse("api:status", args=[gen.pk]))
