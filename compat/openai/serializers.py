"""OpenAI Images API bodies (API reference "Images": create, create edit), as the ``openai``
SDK sends them: JSON for generations, multipart for edits."""

import re

from rest_framework import serializers

SIZE = re.compile(r"^(\d{1,5})x(\d{1,5})$")


class _ImagesSerializer(serializers.Serializer):
    prompt = serializers.CharField(max_length=2000, trim_whitespace=True)
    model = serializers.CharField(max_length=100, required=False, allow_null=True,
                                  allow_blank=True, default=None,
                                  help_text="A model profile slug (`GET /v1/models`); omitted: "
                                            "your default model.")
    n = serializers.IntegerField(min_value=1, max_value=8, required=False, allow_null=True,
                                 default=1)
    size = serializers.CharField(max_length=20, required=False, allow_null=True,
                                 allow_blank=True, default=None,
                                 help_text="`WIDTHxHEIGHT` in pixels (multiples of 8, within "
                                           "the model's limits) or `auto` (the model's "
                                           "default size).")
    response_format = serializers.ChoiceField(choices=["url", "b64_json"], required=False,
                                              allow_null=True, default="url")
    user = serializers.CharField(max_length=200, required=False, allow_blank=True,
                                 allow_null=True, help_text="Accepted and not used.")

    def validate_size(self, value):
        if not value or value == "auto":
            return None
        match = SIZE.match(value)
        if not match:
            raise serializers.ValidationError("Use WIDTHxHEIGHT, e.g. 512x512, or auto.")
        return int(match.group(1)), int(match.group(2))


class OpenAIGenerationsSerializer(_ImagesSerializer):
    """``POST /v1/images/generations``. ``quality``, ``style``, ``background``,
    ``output_format``, ``moderation`` are accepted and ignored (Atelier's models have no such
    settings)."""

    quality = serializers.CharField(max_length=20, required=False, allow_null=True,
                                    allow_blank=True, help_text="Ignored.")
    style = serializers.CharField(max_length=20, required=False, allow_null=True,
                                  allow_blank=True, help_text="Ignored.")


class OpenAIEditsSerializer(_ImagesSerializer):
    """``POST /v1/images/edits`` (multipart): ``image`` (PNG, JPEG or WebP; ``image[]`` is
    taken too, the first is used) and an optional ``mask`` whose fully transparent pixels
    (alpha 0) mark where to edit (OpenAI's rule); without a mask, a transparent area of the
    image itself is the mask, and an opaque image is edited as a whole (img2img)."""

    image = serializers.FileField(allow_empty_file=True)
    mask = serializers.FileField(required=False, allow_null=True, allow_empty_file=True,
                                 default=None)


class OpenAIImageDataSerializer(serializers.Serializer):
    url = serializers.CharField(required=False, help_text="For `response_format` url: valid "
                                                          "for COMPAT_URL_MAX_AGE seconds.")
    b64_json = serializers.CharField(required=False)
    revised_prompt = serializers.CharField(required=False, allow_null=True)


class OpenAIImagesResponseSerializer(serializers.Serializer):
    created = serializers.IntegerField(help_text="Unix time, seconds.")
    data = OpenAIImageDataSerializer(many=True)


class OpenAIModelSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField()
    created = serializers.IntegerField()
    owned_by = serializers.CharField()


class OpenAIModelListSerializer(serializers.Serializer):
    object = serializers.CharField()
    data = OpenAIModelSerializer(many=True)
