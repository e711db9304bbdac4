"""Model profiles: the named choices a user picks when generating."""

from django.core.validators import MinValueValidator
from django.db import models


class ModelProfile(models.Model):
    """A provider + pipeline type + model, with defaults and limits (pixels, steps).

    Requests name a profile by ``slug``; there is no process-wide current model.
    """

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100, unique=True)
    provider = models.CharField(max_length=50, help_text="A key of settings.IMAGE_PROVIDERS.")
    pipeline_type = models.CharField(
        max_length=50, default="sd", help_text="sd, sdxl, flux, or the provider's own type."
    )
    model_path = models.CharField(
        max_length=1000, blank=True,
        help_text="Local diffusers folder or checkpoint, or the remote model id.",
    )
    options = models.JSONField(default=dict, blank=True, help_text="Provider-specific options.")
    default_width = models.PositiveIntegerField(default=512, validators=[MinValueValidator(8)])
    default_height = models.PositiveIntegerField(default=512, validators=[MinValueValidator(8)])
    default_steps = models.PositiveIntegerField(default=20)
    default_guidance_scale = models.FloatField(default=7.0)
    default_negative_prompt = models.TextField(blank=True)
    max_width = models.PositiveIntegerField(default=1024)
    max_height = models.PositiveIntegerField(default=1024)
    enabled = models.BooleanField(default=True)
    is_default = models.BooleanField(default=False, help_text="Used when a request names no model.")
    #: "library": made by ``providers.checkpoints.checkpoints_sync`` from a file under
    #: CHECKPOINT_ROOTS (docs/checkpoints.md); "manual": typed in by a person. A library profile
    #: whose synced fields a person changed becomes "manual" and the sync leaves it alone.
    source = models.CharField(
        max_length=20, default="manual", choices=[("manual", "Manual"), ("library", "Library")],
        help_text="library: found in CHECKPOINT_ROOTS and kept in step with the file.",
    )
    #: The field values the checkpoint sync last wrote (how a hand edit is recognised).
    library_state = models.JSONField(default=dict, blank=True, editable=False)
    note = models.CharField(max_length=500, blank=True,
                            help_text="Why a library checkpoint is disabled or may not load.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-is_default", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.provider}/{self.pipeline_type})"
