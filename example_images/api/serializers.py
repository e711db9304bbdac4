"""Serializers of the example-images API (validation only; services do the work)."""

from rest_framework import serializers

from ..models import ExampleImage

NSFW_CHOICES = [1, 2, 4, 8, 16]
#: The largest id the database holds (PostgreSQL bigint, SQLite INTEGER): a larger one is a 400,
#: not an OverflowError in the lookup.
MAX_ID = 2**63 - 1


class ExampleImageSerializer(serializers.ModelSerializer):
    """One example image; ``file`` is relative to ``EXAMPLE_IMAGES_ROOT`` (never absolute) and
    ``file_url`` serves it to authenticated users."""

    file_url = serializers.SerializerMethodField()
    use_url = serializers.SerializerMethodField()
    url = serializers.CharField(read_only=True,
                                help_text="Where Civitai serves the image; empty for imports.")

    class Meta:
        model = ExampleImage
        fields = ["id", "lora", "file", "file_url", "source", "civitai_image_id", "url", "width",
                  "height", "size", "nsfw_level", "prompt", "negative_prompt", "seed", "steps",
                  "sampler", "cfg_scale", "resources", "order", "created_at", "use_url"]
        read_only_fields = fields

    def get_file_url(self, obj) -> str:
        return f"/api/example-images/{obj.pk}/file/"

    def get_use_url(self, obj) -> str:
        """The generate page prefilled with this image's settings and the LoRA."""
        from urllib.parse import urlencode

        params = [("prompt", obj.prompt)] if obj.prompt else []
        if obj.negative_prompt:
            params.append(("negative_prompt", obj.negative_prompt))
        for key in ("seed", "steps"):
            if getattr(obj, key) is not None:
                params.append((key, getattr(obj, key)))
        if obj.cfg_scale is not None:
            params.append(("cfg", f"{obj.cfg_scale:g}"))
        weight = (obj.meta or {}).get("lora_weight") or obj.lora.preferred_weight or 1
        params.append(("lora", f"{obj.lora.name}:{float(weight):g}"))
        return "/?" + urlencode(params)


class ExampleDownloadOptionsSerializer(serializers.Serializer):
    limit_per_model = serializers.IntegerField(min_value=1, max_value=100, required=False)
    nsfw_max = serializers.ChoiceField(choices=NSFW_CHOICES, required=False,
                                       help_text="Highest Civitai browsing level (bitmask value).")
    optimize = serializers.BooleanField(required=False, allow_null=True, default=None)


class ExampleDownloadStartSerializer(ExampleDownloadOptionsSerializer):
    lora_ids = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
                                     required=False, allow_empty=False, max_length=100_000)


class ExampleForceSerializer(ExampleDownloadOptionsSerializer):
    lora_id = serializers.IntegerField(min_value=1, max_value=MAX_ID)


class ExampleImportJsonSerializer(serializers.Serializer):
    lora = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    paths = serializers.ListField(child=serializers.CharField(max_length=4096,
                                                              trim_whitespace=False),
                                  required=False, max_length=50)


class ExampleLoraQuerySerializer(serializers.Serializer):
    lora = serializers.IntegerField(min_value=1, max_value=MAX_ID)


class ExampleGenerateSerializer(serializers.Serializer):
    model = serializers.CharField(required=False, allow_blank=True, max_length=100,
                                  help_text="Model profile slug (default profile when empty).")
    weights = serializers.ListField(child=serializers.FloatField(min_value=-5, max_value=5),
                                    required=False, allow_empty=False, max_length=6)
    prompts = serializers.ListField(child=serializers.CharField(max_length=2000),
                                    required=False, allow_empty=False, max_length=8)
    seed = serializers.IntegerField(required=False, allow_null=True, min_value=-1,
                                    max_value=2**32 - 1)
