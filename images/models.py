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
    #: Textual inversion embeddings the prompts call: [{"name", "path", "sha256"}]
    #: (images/services/embeddings.py, docs/checkpoints.md#textual-inversion-embeddings).
    embeddings = models.JSONField(default=list, blank=True)
    style = models.ForeignKey("Style", on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="generation_requests",
                              help_text="The style whose template was applied to the prompt.")
    # Edit (img2img / inpaint) and upscale requests start from an image.
    source_image = models.ForeignKey("Image", on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="derived_requests")
    init_image = models.ImageField(upload_to="inputs/%Y/%m/", blank=True,
                                   help_text="The input image as given (upload or copy).")
    mask = models.ImageField(upload_to="masks/%Y/%m/", blank=True,
                             help_text="Inpaint mask: white is repainted, black kept.")
    strength = models.FloatField(null=True, blank=True,
                                 help_text="Denoising strength 0..1 for img2img/inpaint.")
    upscale_factor = models.PositiveSmallIntegerField(null=True, blank=True)
    upscaler = models.CharField(max_length=50, blank=True,
                                help_text="'lanczos' (local) or the provider's upscaler.")
    # A1111 parity (issue 13): what the sampler/scheduler labels, clip skip, VAE and hires fix
    # asked for. Empty sampler/scheduler: the model's default.
    sampler = models.CharField(max_length=40, blank=True, default="",
                               help_text="A1111 sampler label, e.g. 'DPM++ 2M'.")
    scheduler = models.CharField(max_length=40, blank=True, default="",
                                 help_text="A1111 schedule type, e.g. 'Karras'.")
    clip_skip = models.PositiveSmallIntegerField(default=1,
                                                 help_text="A1111 numbering: 1 = no skip.")
    vae = models.CharField(max_length=500, blank=True, default="",
                           help_text="VAE file or folder used instead of the model's.")
    enable_hr = models.BooleanField(default=False, help_text="Hires fix: a second pass.")
    hr_scale = models.FloatField(null=True, blank=True)
    hr_upscaler = models.CharField(max_length=100, blank=True, default="")
    hr_second_pass_steps = models.PositiveIntegerField(null=True, blank=True)
    # Denoising strength of the hires pass (edits use ``strength``).
    hr_denoising_strength = models.FloatField(null=True, blank=True)
    # A client-chosen key (header Idempotency-Key): a repeated POST returns the first request.
    idempotency_key = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["user", "idempotency_key"],
                                    condition=~models.Q(idempotency_key=""),
                                    name="generation_request_idempotency_key"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.prompt[:60]}"


class Image(models.Model):
    """One generated image: the PNG (with an A1111 ``parameters`` chunk) and a WebP thumbnail."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="images")
    request = models.ForeignKey(GenerationRequest, on_delete=models.SET_NULL, null=True,
                                blank=True, related_name="images")
    # Indexed: /media/ looks the owning image up by file name (images.views_media).
    file = models.ImageField(upload_to="images/%Y/%m/", db_index=True)
    thumbnail = models.ImageField(upload_to="thumbnails/%Y/%m/", blank=True, db_index=True)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    seed = models.BigIntegerField()
    steps = models.PositiveIntegerField()
    guidance_scale = models.FloatField()
    sampler = models.CharField(max_length=100, blank=True)
    scheduler = models.CharField(max_length=40, blank=True, default="")
    prompt = models.TextField()
    negative_prompt = models.TextField(blank=True)
    provider = models.CharField(max_length=50)
    model_name = models.CharField(max_length=255, help_text="The model profile's name.")
    loras = models.JSONField(default=list, blank=True)
    parameters = models.TextField(blank=True, help_text="A1111-style infotext stored in the PNG.")
    is_public = models.BooleanField(default=False)
    source = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True,
                               related_name="derived",
                               help_text="The image this one was edited or upscaled from.")
    kind = models.CharField(max_length=20, default="txt2img")
    # Organization and presentation (#6).
    title = models.CharField(max_length=200, blank=True)
    caption = models.TextField(blank=True)
    alt_text = models.CharField(max_length=500, blank=True)
    project = models.ForeignKey("Project", on_delete=models.SET_NULL, null=True, blank=True,
                                related_name="images")
    tags = models.ManyToManyField("Tag", blank=True, related_name="images")
    is_favorite = models.BooleanField(default=False)
    nsfw_level = models.PositiveSmallIntegerField(
        default=0, help_text="0 safe; 1 soft; 2 mature; 3 explicit (Civitai-like scale).")
    audio = models.FileField(upload_to="audio/%Y/%m/", blank=True, db_index=True,
                             help_text="Narration of the caption (or prompt), WAV.")
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
    lora_names = models.JSONField(default=list, blank=True)
    estimated_cost = models.DecimalField(max_digits=10, decimal_places=4, default=0,
                                         help_text="USD, from settings.PROVIDER_COSTS.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return (f"{self.provider}/{self.model_name}: {self.image_count} in "
                f"{self.duration_seconds:.1f}s")


class Project(models.Model):
    """A user's folder of images; ``cover`` is one of its images shown on cards."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                              related_name="image_projects")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    cover = models.ForeignKey(Image, on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="covered_projects")
    is_public = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]

    def __str__(self) -> str:
        return self.name


class Style(models.Model):
    """A reusable prompt template: ``prompt_template`` contains ``{prompt}``; ``owner`` None with
    ``is_shared`` is a staff-managed style everyone sees. ``default_parameters`` holds generate
    fields (steps, guidance_scale, width, height, model...) used when the request omits them."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True,
                              blank=True, related_name="styles")
    name = models.CharField(max_length=100)
    prompt_template = models.TextField(default="{prompt}")
    negative_prompt = models.TextField(blank=True)
    default_parameters = models.JSONField(default=dict, blank=True)
    is_shared = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    def apply(self, prompt: str) -> str:
        """The template with ``{prompt}`` replaced (no other format fields are interpreted)."""
        return self.prompt_template.replace("{prompt}", prompt)


class Tag(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=120, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PromptHelper(models.Model):
    """A saved prompt. ``embedding`` is the vector of ``prompt`` computed at save time by
    ``images.embeddings`` (``embedder`` names the backend that made it)."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                              related_name="prompt_helpers")
    name = models.CharField(max_length=200)
    prompt = models.TextField()
    negative_prompt = models.TextField(blank=True)
    embedding = models.JSONField(default=list, blank=True)
    embedder = models.CharField(max_length=100, blank=True)
    current_version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]

    def __str__(self) -> str:
        return self.name


class PromptHelperVersion(models.Model):
    helper = models.ForeignKey(PromptHelper, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    prompt = models.TextField()
    negative_prompt = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]
        constraints = [models.UniqueConstraint(fields=["helper", "version"],
                                               name="prompt_helper_version_unique")]

    def __str__(self) -> str:
        return f"{self.helper_id} v{self.version}"


class ThemeHelper(models.Model):
    """A theme that seeds prompts: ``terms`` is a list of prompt terms. ``owner`` None with
    ``is_shared`` is staff-managed; ``parent`` is the theme this one was remixed from."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True,
                              blank=True, related_name="theme_helpers")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    terms = models.JSONField(default=list, blank=True)
    parent = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True,
                               related_name="remixes")
    is_shared = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class ThemeFavorite(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="theme_favorites")
    theme = models.ForeignKey(ThemeHelper, on_delete=models.CASCADE, related_name="favorites")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["user", "theme"],
                                               name="theme_favorite_unique")]
