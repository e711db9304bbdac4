"""Generation requests, the images they produce, and usage records."""

from django.conf import settings
from django.db import models


class GenerationRequest(models.Model):
    """What a user asked for. Sizes in pixels; ``loras`` is
    ``[{"lora_id", "name", "weight", "sha256", "short_hash"}]`` as resolved at submit time."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="generation_requests")
    job = models.OneToOneField("jobs.Job", on_delete=models.PROTECT,
                               related_name="generation_request")
    profile = models.ForeignKey("providers.ModelProfile", on_delete=models.PROTECT,
                                related_name="generation_requests")
    kind = models.CharField(max_length=20, default="txt2img")
    prompt = models.TextField(help_text="The prompt as typed, <lora:...> tags included.")
    clean_prompt = models.TextField(help_text="The prompt given to the model, LoRA tags removed.")
    negative_prompt = models.TextField(blank=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    steps = models.PositiveIntegerField()
    guidance_scale = models.FloatField()
    seed = models.BigIntegerField()
    n = models.PositiveSmallIntegerField(default=1)
    loras = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.prompt[:60]}"


class Image(models.Model):
    """One generated image: the PNG (with an A1111 ``parameters`` chunk) and a WebP thumbnail."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="images")
    request = models.ForeignKey(GenerationRequest, on_delete=models.SET_NULL, null=True,
                                blank=True, related_name="images")
    file = models.ImageField(upload_to="images/%Y/%m/")
    thumbnail = models.ImageField(upload_to="thumbnails/%Y/%m/", blank=True)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    seed = models.BigIntegerField()
    steps = models.PositiveIntegerField()
    guidance_scale = models.FloatField()
    sampler = models.CharField(max_length=100, blank=True)
    prompt = models.TextField()
    negative_prompt = models.TextField(blank=True)
    provider = models.CharField(max_length=50)
    model_name = models.CharField(max_length=255, help_text="The model profile's name.")
    loras = models.JSONField(default=list, blank=True)
    parameters = models.TextField(blank=True, help_text="A1111-style infotext stored in the PNG.")
    is_public = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"])]

    def __str__(self) -> str:
        return f"Image {self.pk} ({self.width}x{self.height}, seed {self.seed})"


class UsageLog(models.Model):
    """One finished generation: who, which provider and model, how long, how many images."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                             related_name="usage_logs")
    request = models.ForeignKey(GenerationRequest, on_delete=models.SET_NULL, null=True,
                                blank=True, related_name="usage_logs")
    provider = models.CharField(max_length=50, db_index=True)
    model_name = models.CharField(max_length=255)
    kind = models.CharField(max_length=20, default="txt2img")
    image_count = models.PositiveIntegerField(default=0)
    duration_seconds = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model_name}: {self.image_count} in {self.duration_seconds:.1f}s"
