"""Example images of LoRAs: downloaded from Civitai, imported by the user, or generated here.

Files live under ``settings.EXAMPLE_IMAGES_ROOT`` in one folder per LoRA named by the LoRA's
sha256 (lower-case hex), so renames and moves of the LoRA file never orphan them.
"""

from django.db import models
from django.db.models import Q


class ExampleImage(models.Model):
    """One example image of a LoRA.

    ``file`` is ``'<sha256>/<name>'`` relative to ``EXAMPLE_IMAGES_ROOT``; ``width``/``height``
    in pixels, ``size`` in bytes; ``nsfw_level`` is Civitai's browsing-level bitmask value
    (1 PG, 2 PG-13, 4 R, 8 X, 16 XXX; docs/protocols.md#civitai-nsfw-levels), 0 when unknown.
    ``meta`` keeps the free-form generation metadata (Civitai ``meta``: resources, clip
    skip...).
    """

    class Source(models.TextChoices):
        CIVITAI = "civitai"
        IMPORT = "import"
        GENERATED = "generated"

    lora = models.ForeignKey("loras.LoraModel", on_delete=models.CASCADE,
                             related_name="example_images")
    sha256 = models.CharField(max_length=64, db_index=True,
                              help_text="The LoRA's sha256 when stored (the folder name).")
    file = models.CharField(max_length=500, help_text="Path relative to EXAMPLE_IMAGES_ROOT.")
    source = models.CharField(max_length=20, choices=Source.choices, db_index=True)
    civitai_image_id = models.BigIntegerField(null=True, blank=True)
    url = models.URLField(max_length=2000, blank=True)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    size = models.BigIntegerField(default=0)
    nsfw_level = models.PositiveSmallIntegerField(default=0)
    prompt = models.TextField(blank=True)
    negative_prompt = models.TextField(blank=True)
    seed = models.BigIntegerField(null=True, blank=True)
    steps = models.PositiveIntegerField(null=True, blank=True)
    sampler = models.CharField(max_length=100, blank=True)
    cfg_scale = models.FloatField(null=True, blank=True)
    resources = models.JSONField(default=list, blank=True,
                                 help_text="Models and LoRAs used (Civitai civitaiResources, or "
                                           "the LoRAs and weights of a local generation).")
    meta = models.JSONField(default=dict, blank=True)
    generated_image = models.ForeignKey("images.Image", on_delete=models.SET_NULL, null=True,
                                        blank=True, related_name="+")
    order = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["lora", "order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["lora", "civitai_image_id"],
                                    condition=Q(civitai_image_id__isnull=False),
                                    name="example_unique_civitai_image"),
        ]

    def __str__(self) -> str:
        return self.file
