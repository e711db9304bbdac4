"""The LoRA library (minimal for now: a file, its name and hashes)."""

from django.db import models


class LoraModel(models.Model):
    """One LoRA file on disk.

    ``sha256`` is the whole-file SHA-256 (64 hex, lower case) and the adapter cache key;
    ``autov3`` the SHA-256 of the tensor data after the safetensors header (A1111 shows its first
    12 hex in ``Lora hashes:``; PROTOCOLS.md section 8).
    """

    name = models.CharField(max_length=255, unique=True,
                            help_text="Name used in prompts as <lora:name:weight>.")
    path = models.CharField(max_length=2000, help_text="Absolute path of the .safetensors file.")
    sha256 = models.CharField(max_length=64, db_index=True)
    autov3 = models.CharField(max_length=64, blank=True)
    size = models.BigIntegerField(default=0, help_text="Bytes.")
    base_model = models.CharField(max_length=50, blank=True)
    trigger_words = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "LoRA"

    def __str__(self) -> str:
        return self.name

    @property
    def short_hash(self) -> str:
        """A1111's LoRA shorthash: first 12 hex of AutoV3 (falls back to sha256)."""
        return (self.autov3 or self.sha256)[:12]
