"""What the compatibility APIs remember per user."""

from django.conf import settings
from django.db import models


class CompatOptions(models.Model):
    """A user's A1111 options that Atelier keeps (``POST /sdapi/v1/options``).

    A1111 keeps one ``sd_model_checkpoint`` and one ``CLIP_stop_at_last_layers`` for the whole
    server; Atelier keeps them per user and applies them to that user's A1111 calls that name
    no checkpoint / clip skip of their own. Other options are answered but not kept.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="compat_options")
    checkpoint = models.ForeignKey("providers.ModelProfile", on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+",
                                   help_text="sd_model_checkpoint: the default model profile.")
    clip_skip = models.PositiveSmallIntegerField(
        default=1, help_text="CLIP_stop_at_last_layers (1 = no skip).")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "A1111 options"
        verbose_name_plural = "A1111 options"

    def __str__(self) -> str:
        return f"A1111 options of {self.user}"
