"""Bodies of ``POST /api/edit/`` and ``POST /api/upscale/`` (JSON or multipart)."""

from rest_framework import serializers

from .serializers import GenerateSerializer, LoraRefSerializer

_generate_fields = GenerateSerializer().fields


class _SourceSerializer(serializers.Serializer):
    """The source image: ``image_id`` (one of your images) or a multipart ``image`` file
    (PNG, JPEG or WebP). Exactly one of them."""

    image_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1, required=False,
                                        allow_null=True, default=None)
    image = serializers.FileField(required=False, allow_null=True, default=None,
                                  allow_empty_file=True)
    model = serializers.SlugField(required=False, allow_null=True, allow_blank=True,
                                  default=None, help_text="Model profile slug.")

    def validate(self, attrs):
        if (attrs.get("image_id") is None) == (attrs.get("image") is None):
            raise serializers.ValidationError(
                {"image": ["Give exactly one of image_id and image."]})
        return attrs


class EditSerializer(_SourceSerializer):
    """``POST /api/edit/``: img2img, or inpaint when ``mask`` (white = repaint, same size as the
    image) is sent. ``strength`` is the denoising strength (0 keeps the source, 1 ignores it).
    ``prompt`` defaults to the source image's prompt; ``width``/``height`` (pixels, multiples
    of 8) to the source size rounded down to multiples of 8."""

    mask = serializers.FileField(required=False, allow_null=True, default=None,
                                 allow_empty_file=True)
    prompt = serializers.CharField(max_length=2000, required=False, allow_blank=True,
                                   default="", trim_whitespace=True)
    negative_prompt = serializers.CharField(max_length=2000, required=False, allow_blank=True,
                                            allow_null=True, default=None)
    strength = serializers.FloatField(min_value=0.01, max_value=1.0, required=False,
                                      allow_null=True, default=None)
    width = serializers.IntegerField(min_value=8, max_value=4096, required=False,
                                     allow_null=True, default=None)
    height = serializers.IntegerField(min_value=8, max_value=4096, required=False,
                                      allow_null=True, default=None)
    steps = serializers.IntegerField(min_value=1, max_value=150, required=False,
                                     allow_null=True, default=None)
    guidance_scale = serializers.FloatField(min_value=0.0, max_value=30.0, required=False,
                                            allow_null=True, default=None)
    seed = serializers.IntegerField(min_value=-1, max_value=2**32 - 1, required=False,
                                    allow_null=True, default=None)
    n = serializers.IntegerField(min_value=1, max_value=8, default=1)
    # Omitted or null: the source image's LoRAs are kept; []: none besides prompt tags.
    loras = LoraRefSerializer(many=True, required=False, allow_null=True, default=None)
    # The same A1111 fields as POST /api/generate/ (checked by the same service function).
    sampler = _generate_fields["sampler"].__class__(**_generate_fields["sampler"]._kwargs)
    sampler_name = _generate_fields["sampler_name"].__class__(
        **_generate_fields["sampler_name"]._kwargs)
    scheduler = _generate_fields["scheduler"].__class__(**_generate_fields["scheduler"]._kwargs)
    clip_skip = _generate_fields["clip_skip"].__class__(**_generate_fields["clip_skip"]._kwargs)
    vae = _generate_fields["vae"].__class__(**_generate_fields["vae"]._kwargs)

    def validate_width(self, value):
        if value is not None and value % 8:
            raise serializers.ValidationError("Must be a multiple of 8.")
        return value

    validate_height = validate_width

    def validate(self, attrs):
        attrs = super().validate(attrs)
        return GenerateSerializer.validate(self, attrs)  # sampler_name: alias of sampler


class UpscaleSerializer(_SourceSerializer):
    """``POST /api/upscale/``: ``factor`` 2 or 4; ``upscaler`` ``"lanczos"`` (local, always
    available) or the name of an upscaler of ``model``'s provider (e.g. SD.Next's
    ``"R-ESRGAN 4x+"``; ``""`` for its default is not allowed: name it)."""

    factor = serializers.ChoiceField(choices=[2, 4], default=2)
    upscaler = serializers.CharField(max_length=50, required=False, default="lanczos")
