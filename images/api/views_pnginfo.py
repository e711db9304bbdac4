"""``POST /api/png-info/``: the generation parameters an image carries (PNG Info).

Thin view over :func:`images.pnginfo.png_info`; formats read (A1111, ComfyUI, InvokeAI,
NovelAI, Fooocus) and their sources: docs/infotext.md#png-info.
"""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from core.schema import api_errors

from ..pnginfo import png_info


class PngInfoSerializer(serializers.Serializer):
    """The upload: one image file (PNG, JPEG or WebP)."""

    image = serializers.FileField(
        allow_empty_file=True,
        help_text="An image made by A1111, ComfyUI, InvokeAI, NovelAI, Fooocus or Atelier.")


PngInfoResponse = inline_serializer("PngInfoResponse", fields={
    "generator": serializers.CharField(allow_null=True, help_text="AUTOMATIC1111, ComfyUI, "
                                       "InvokeAI, NovelAI, Fooocus; null: none found."),
    "parameters": serializers.DictField(help_text="prompt, negative_prompt, steps, sampler, "
                                        "scheduler, cfg_scale, seed, width, height, clip_skip, "
                                        "enable_hr, hr_scale, hr_second_pass_steps, "
                                        "hr_upscaler, denoising_strength, model, model_hash, "
                                        "vae, vae_hash, loras [{name, weight}], version."),
    "raw": serializers.CharField(help_text="The metadata text as stored in the file."),
    "resources": serializers.DictField(help_text="model {name, hash, found, profile, "
                                       "civitai_lookup_url}, vae {name, hash, found}, loras "
                                       "[{name, weight, hash, found, lora_id, "
                                       "civitai_lookup_url}]."),
    "request": serializers.DictField(help_text="The POST /api/generate/ body that makes the "
                                     "image again (the found model profile as `model`)."),
    "message": serializers.CharField(),
})


@api_errors(400)  # invalid_image, image_too_large, too_many_pixels
class PngInfoView(APIView):
    """Read the generation parameters of an uploaded image and resolve the checkpoint and
    LoRAs they name against the library; missing ones come with their Civitai lookup URL.
    An image without parameters answers 200 with empty ``parameters`` and a ``message``."""

    parser_classes = [MultiPartParser]
    throttle_scope = "png_info"  # THROTTLE_PNG_INFO_RATE, per user

    @extend_schema(request={"multipart/form-data": PngInfoSerializer},
                   responses={200: PngInfoResponse})
    def post(self, request):
        serializer = PngInfoSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(png_info(upload=serializer.validated_data["image"]))
