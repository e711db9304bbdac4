from rest_framework import serializers

from jobs.api.serializers import JobAcceptedSerializer, JobSerializer

from ..models import GenerationRequest, Image


class LoraRefSerializer(serializers.Serializer):
    """A LoRA to apply: ``lora`` is a library id, name or sha256 prefix; ``weight`` -5..5."""

    lora = serializers.CharField(max_length=255)
    weight = serializers.FloatField(default=1.0, min_value=-5.0, max_value=5.0)


class GenerateSerializer(serializers.Serializer):
    """``POST /api/generate/`` body. Sizes in pixels, multiples of 8; omitted values come from
    the model profile. ``<lora:name:weight>`` tags in ``prompt`` are added to ``loras``."""

    prompt = serializers.CharField(min_length=1, max_length=2000, trim_whitespace=True)
    negative_prompt = serializers.CharField(max_length=2000, required=False, allow_blank=True,
                                            allow_null=True, default=None)
    model = serializers.SlugField(required=False, allow_null=True, allow_blank=True,
                                  default=None, help_text="Model profile slug.")
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
    loras = LoraRefSerializer(many=True, required=False, default=list)
    style = serializers.CharField(max_length=100, required=False, allow_null=True,
                                  allow_blank=True, default=None,
                                  help_text="Style id or name: its template wraps the prompt.")

    def validate_width(self, value):
        if value is not None and value % 8:
            raise serializers.ValidationError("Must be a multiple of 8.")
        return value

    validate_height = validate_width


class GenerateResponseSerializer(JobAcceptedSerializer):
    """The 202 envelope of a generation, edit or upscale: ``id`` is the generation request's
    pk and ``status_url`` its ``/api/status/<pk>/``."""

    id = serializers.IntegerField()


class ImageSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()

    class Meta:
        model = Image
        fields = ["id", "url", "thumbnail_url", "width", "height", "seed", "steps",
                  "guidance_scale", "sampler", "prompt", "negative_prompt", "provider",
                  "model_name", "loras", "parameters", "request", "is_public", "created_at"]
        read_only_fields = fields

    def get_url(self, image) -> str:
        return image.file.url

    def get_thumbnail_url(self, image) -> str | None:
        return image.thumbnail.url if image.thumbnail else None


class StatusSerializer(serializers.ModelSerializer):
    """``GET /api/status/<pk>/``: the request, its job's ``status`` at the top level (as in
    every 202 answer), the job snapshot and the images."""

    status = serializers.CharField(source="job.status", read_only=True)
    job = JobSerializer(read_only=True)
    images = ImageSerializer(many=True, read_only=True)
    model = serializers.CharField(source="profile.slug", read_only=True)

    class Meta:
        model = GenerationRequest
        fields = ["id", "status", "prompt", "negative_prompt", "model", "width", "height",
                  "steps", "guidance_scale", "seed", "n", "loras", "created_at", "job",
                  "images"]
        read_only_fields = fields
