import math

from rest_framework import serializers

from jobs.api.serializers import JobAcceptedSerializer, JobSerializer

from ..models import GenerationRequest, Image

#: LoRA weights are finite and within +-10 (images.prompt.LORA_WEIGHT_MAX).
_LORA_WEIGHT_MAX = 10.0


def _finite(value):
    if value is not None and not math.isfinite(value):
        raise serializers.ValidationError("Must be a finite number.")
    return value


class LoraRefSerializer(serializers.Serializer):
    """A LoRA to apply: ``lora`` is a library id, name, file stem, ``ss_output_name`` alias or
    sha256 prefix; ``weight`` -10..10 (the UNet weight when ``te_weight`` is set);
    ``te_weight`` the text-encoder weight of A1111's ``<lora:NAME:TE:UNET>`` (omitted: same as
    ``weight``)."""

    lora = serializers.CharField(max_length=255)
    weight = serializers.FloatField(default=1.0, min_value=-_LORA_WEIGHT_MAX,
                                    max_value=_LORA_WEIGHT_MAX, validators=[_finite])
    te_weight = serializers.FloatField(required=False, allow_null=True, default=None,
                                       min_value=-_LORA_WEIGHT_MAX, max_value=_LORA_WEIGHT_MAX,
                                       validators=[_finite])


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
    # A1111 parity (docs/samplers.md): names as A1111's API takes them, checked before queuing.
    sampler = serializers.CharField(
        max_length=60, required=False, allow_blank=True, allow_null=True, default=None,
        help_text="A1111 sampler ('Euler a', 'DPM++ 2M', or 'k_dpmpp_2m'...); GET "
                  "/api/samplers/ lists them. Omitted: the model's own scheduler.")
    sampler_name = serializers.CharField(
        max_length=60, required=False, allow_blank=True, allow_null=True, default=None,
        help_text="Alias of 'sampler' (A1111's API name).")
    scheduler = serializers.CharField(
        max_length=40, required=False, allow_blank=True, allow_null=True, default=None,
        help_text="A1111 schedule type ('Automatic', 'Karras', 'Exponential', 'SGM Uniform'"
                  "...); GET /api/schedulers/ lists them.")
    clip_skip = serializers.IntegerField(
        min_value=1, max_value=12, required=False, allow_null=True, default=None,
        help_text="A1111 numbering: 1 = last CLIP layer (no skip), 2 = the one before...")
    vae = serializers.CharField(
        max_length=255, required=False, allow_blank=True, allow_null=True, default=None,
        help_text="A VAE file name under VAE_DIR, or 'Automatic' (the model's).")
    enable_hr = serializers.BooleanField(default=False, help_text="Hires fix: a second pass.")
    hr_scale = serializers.FloatField(min_value=1.0, max_value=4.0, default=2.0,
                                      validators=[_finite])
    hr_upscaler = serializers.CharField(max_length=100, required=False, allow_blank=True,
                                        default="Latent",
                                        help_text="'Latent' (and its variants) or 'Lanczos'.")
    hr_second_pass_steps = serializers.IntegerField(
        min_value=0, max_value=150, default=0, help_text="0: as many as the first pass.")
    denoising_strength = serializers.FloatField(
        min_value=0.0, max_value=1.0, default=0.7, validators=[_finite],
        help_text="Denoising strength of the hires pass.")

    def validate_width(self, value):
        if value is not None and value % 8:
            raise serializers.ValidationError("Must be a multiple of 8.")
        return value

    validate_height = validate_width

    def validate(self, attrs):
        alias = attrs.pop("sampler_name", None)
        if alias and attrs.get("sampler") and alias != attrs["sampler"]:
            raise serializers.ValidationError(
                {"sampler_name": ["Differs from 'sampler'; send one of them."]})
        attrs["sampler"] = attrs.get("sampler") or alias or ""
        return attrs


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
                  "guidance_scale", "sampler", "scheduler", "prompt", "negative_prompt",
                  "provider", "model_name", "loras", "parameters", "request", "is_public",
                  "created_at"]
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
    vae = serializers.SerializerMethodField(help_text="VAE file name; '' = the model's.")

    class Meta:
        model = GenerationRequest
        fields = ["id", "status", "prompt", "negative_prompt", "model", "width", "height",
                  "steps", "guidance_scale", "seed", "n", "loras", "sampler", "scheduler",
                  "clip_skip", "vae", "enable_hr", "hr_scale", "hr_upscaler",
                  "hr_second_pass_steps", "hr_denoising_strength", "created_at", "job",
                  "images"]
        read_only_fields = fields

    def get_vae(self, gen) -> str:
        import os

        return os.path.basename(gen.vae) if gen.vae else ""
