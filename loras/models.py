"""The LoRA library: folders (roots) of .safetensors files and one row per file."""

import os

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower


class LibraryRoot(models.Model):
    """A folder that holds LoRA files. Seeded from ``LORA_ROOTS``; editable by staff.

    ``path`` is absolute; every LoRA path in the API is relative to its root.
    """

    name = models.CharField(max_length=100, blank=True)
    path = models.CharField(max_length=2000, unique=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["path"]

    def __str__(self) -> str:
        return self.name or self.path


class LoraModel(models.Model):
    """One LoRA file on disk, with what we know about it.

    Hashes are lower-case hex: ``sha256`` of the whole file (AutoV2 is its first 10 hex) and
    ``autov3``, the SHA-256 of the tensor data after the safetensors header (A1111 shows its
    first 12 hex in ``Lora hashes:``; Civitai may match a file only by it;
    docs/protocols.md#model-hashes).
    ``size`` in bytes, ``mtime`` in seconds since the epoch; (size, mtime, inode) decide
    whether a rescan re-reads the file.
    """

    class Status(models.TextChoices):
        PRESENT = "present"
        MISSING = "missing"
        TRASHED = "trashed"

    root = models.ForeignKey(LibraryRoot, on_delete=models.PROTECT, related_name="loras")
    relative_path = models.CharField(max_length=2000,
                                     help_text="Path inside the root, '/'-separated.")
    folder = models.CharField(max_length=2000, blank=True, db_index=True,
                              help_text="Folder inside the root ('' for the root itself).")
    file_name = models.CharField(max_length=500)
    name = models.CharField(max_length=255, db_index=True,
                            help_text="Name used in prompts as <lora:name:weight> (file stem).")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PRESENT,
                              db_index=True)
    size = models.BigIntegerField(default=0)
    mtime = models.FloatField(default=0.0)
    inode = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True, db_index=True)
    autov3 = models.CharField(max_length=64, blank=True, db_index=True)
    # What the file says about itself (safetensors header), and what we derived from it.
    base_model = models.CharField(max_length=50, blank=True, db_index=True)
    network_module = models.CharField(max_length=100, blank=True)
    network_rank = models.PositiveIntegerField(null=True, blank=True)
    network_alpha = models.FloatField(null=True, blank=True)
    header_metadata = models.JSONField(default=dict, blank=True,
                                       help_text="ss_* and modelspec.* keys of the header.")
    # What the user and Civitai say about it.
    trigger_words = models.JSONField(default=list, blank=True)
    tags = models.JSONField(default=list, blank=True)
    nsfw_level = models.PositiveSmallIntegerField(default=0, db_index=True)
    preview = models.CharField(max_length=2000, blank=True,
                               help_text="Preview image path relative to the root.")
    notes = models.TextField(blank=True)
    description = models.TextField(blank=True, help_text="From an A1111 / civitai-browser-plus "
                                   "<stem>.json sidecar ('description').")
    usage_tips = models.TextField(blank=True)
    preferred_weight = models.FloatField(null=True, blank=True)
    favorite = models.BooleanField(
        default=False, db_index=True,
        help_text="Favourite flag read from another tool's sidecar (Lora-Manager). What the API "
                  "calls favorite is per user: LoraFavorite.")
    excluded = models.BooleanField(default=False, db_index=True)
    usage_count = models.PositiveIntegerField(default=0)
    last_used_at = models.DateTimeField(null=True, blank=True)
    user_overrides = models.JSONField(
        default=dict, blank=True,
        help_text="What the user decided against the file and Civitai: {'base_model': bool "
                  "(the user set it), 'trigger_words_removed': [words the user deleted]}.")
    civitai_model_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    civitai_version_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    civitai = models.JSONField(default=dict, blank=True, help_text="The Civitai model version.")
    license_flags = models.JSONField(default=dict, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    # Civitai update check (loras.services.updates): the newest version of the same model for
    # the same base model, when newer than the file's version and not ignored.
    update_available = models.BooleanField(default=False, db_index=True)
    civitai_update = models.JSONField(
        default=dict, blank=True,
        help_text="{'version_id', 'name', 'base_model', 'published_at', 'checked_at'} of the "
                  "newer version; {} when none.")
    update_ignored_versions = models.JSONField(default=list, blank=True,
                                               help_text="Civitai version ids the user ignored.")
    update_ignore_model = models.BooleanField(default=False,
                                              help_text="Never flag updates of this model.")
    update_checked_at = models.DateTimeField(null=True, blank=True)
    scan_error = models.TextField(blank=True)
    missing_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = "LoRA"
        # Staff, or users granted this in the admin, change the shared files (docs/library.md).
        permissions = [("manage_library", "Can change library files (rename, move, trash, "
                                          "organize, scan, refresh, download)")]
        constraints = [
            models.UniqueConstraint(fields=["root", "relative_path"],
                                    condition=~Q(status="trashed"),
                                    name="lora_unique_live_path"),
        ]
        # Measured with bench/list_api.py at 100,000 rows on PostgreSQL (p50 126 -> 42 ms);
        # the GIN (tags) and trigram (search) indexes are PostgreSQL-only: migration 0003.
        indexes = [
            models.Index(Lower("name"), "id", name="lora_name_ci"),
            models.Index(Lower("name"), "id", name="lora_live_name_ci",
                         condition=Q(status="present", excluded=False)),
            models.Index(fields=["created_at", "id"], name="lora_created_id"),
            models.Index(fields=["size", "id"], name="lora_size_id"),
            models.Index(fields=["usage_count", "id"], name="lora_usage_id"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def abs_path(self) -> str:
        """Absolute path of the file (root path + relative path)."""
        return os.path.join(self.root.path, *self.relative_path.split("/"))

    @property
    def preview_is_video(self) -> bool:
        """Whether the preview is a video (``.mp4``/``.webm``; loras.sidecars)."""
        return self.preview.lower().endswith((".mp4", ".webm"))

    @property
    def autov2(self) -> str:
        """Civitai's AutoV2: the first 10 hex of the whole-file SHA-256."""
        return self.sha256[:10]

    @property
    def short_hash(self) -> str:
        """A1111's LoRA shorthash: first 12 hex of AutoV3 (falls back to sha256)."""
        return (self.autov3 or self.sha256)[:12]


class LoraFavorite(models.Model):
    """A user's own favourite LoRA (every user keeps their own; docs/library.md)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="lora_favorites")
    lora = models.ForeignKey(LoraModel, on_delete=models.CASCADE, related_name="favorites")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "lora"],
                                               name="lora_favorite_once")]

    def __str__(self) -> str:
        return f"{self.user_id} ♥ {self.lora_id}"


class TrashEntry(models.Model):
    """A library file (and its sidecars) moved to the trash folder; restorable.

    ``trash_path`` is relative to ``settings.LORA_TRASH_DIR``; ``sidecars`` lists the sidecar
    files moved with it as ``[{"original": rel_path_in_root, "trash": rel_path_in_trash}]``.
    """

    lora = models.ForeignKey(LoraModel, on_delete=models.CASCADE, related_name="trash_entries")
    root = models.ForeignKey(LibraryRoot, on_delete=models.PROTECT, related_name="trash_entries")
    original_relative_path = models.CharField(max_length=2000)
    trash_path = models.CharField(max_length=2000)
    sidecars = models.JSONField(default=list, blank=True)
    deleted_at = models.DateTimeField(auto_now_add=True)
    restored_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-deleted_at"]
        verbose_name_plural = "trash entries"

    def __str__(self) -> str:
        return f"{self.original_relative_path} (trashed {self.deleted_at:%Y-%m-%d})"


class Download(models.Model):
    """A model file download (Civitai model version or URL), run as a Job.

    Sizes in bytes. ``target_folder`` is relative to ``root``; the file is streamed to a
    temporary ``.part`` file (resumed with HTTP ``Range``) and moved into place atomically.
    """

    job = models.OneToOneField("jobs.Job", on_delete=models.CASCADE, related_name="download")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="downloads")
    source_url = models.URLField(max_length=2000)
    civitai_model_id = models.BigIntegerField(null=True, blank=True)
    civitai_version_id = models.BigIntegerField(null=True, blank=True)
    root = models.ForeignKey(LibraryRoot, on_delete=models.PROTECT, related_name="downloads")
    target_folder = models.CharField(max_length=2000, blank=True)
    file_name = models.CharField(max_length=500, blank=True)
    expected_sha256 = models.CharField(max_length=64, blank=True)
    total_bytes = models.BigIntegerField(null=True, blank=True)
    downloaded_bytes = models.BigIntegerField(default=0)
    lora = models.ForeignKey(LoraModel, on_delete=models.SET_NULL, null=True, blank=True,
                             related_name="downloads")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.file_name or self.source_url
