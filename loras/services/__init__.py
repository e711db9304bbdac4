"""Writes to the LoRA library. Library files are only touched through services."""

from __future__ import annotations

import os

from django.conf import settings

from core.exceptions import ApplicationError

from ..models import LibraryRoot, LoraModel
from ..paths import relative_to_root


def library_roots_sync(*, paths: list[str] | None = None) -> list[LibraryRoot]:
    """Make sure every folder of ``paths`` (default ``settings.LORA_ROOTS``) is a LibraryRoot.

    Folders are stored as absolute paths; missing folders are created.
    """
    roots = []
    for path in (settings.LORA_ROOTS if paths is None else paths):
        absolute = os.path.abspath(os.path.expanduser(path))
        os.makedirs(absolute, exist_ok=True)
        root, _ = LibraryRoot.objects.get_or_create(
            path=absolute, defaults={"name": os.path.basename(absolute) or absolute})
        roots.append(root)
    return roots


def root_for_path(*, path: str) -> LibraryRoot:
    """The LibraryRoot holding ``path`` (absolute); a root for its folder when none does."""
    for root in LibraryRoot.objects.filter(enabled=True):
        if relative_to_root(root.path, path) is not None:
            return root
    return library_roots_sync(paths=[os.path.dirname(path)])[0]


def lora_register(*, path: str, name: str | None = None, base_model: str = "") -> LoraModel:
    """Add (or refresh) the LoRA file at ``path`` as a scan would read it (hashes, header
    metadata, sidecars); its folder becomes a root when no library root holds it. ``name``
    overrides the file stem; ``base_model`` fills the base model only when nothing else did.

    Raises:
        ApplicationError: 400 ``lora_not_found`` when the file does not exist or is not
            a ``.safetensors`` file; 400 ``lora_unreadable`` when it cannot be read.
    """
    from .scan import lora_file_record

    path = os.path.abspath(path)
    if not os.path.isfile(path) or not path.endswith(".safetensors"):
        raise ApplicationError("lora_not_found", f"No .safetensors file at {path}.")
    lora = lora_file_record(root=root_for_path(path=path), path=path)
    changed = []
    if name and lora.name != name:
        lora.name, changed = name, [*changed, "name"]
    if base_model and not lora.base_model:
        lora.base_model, changed = base_model, [*changed, "base_model"]
    if changed:
        lora.save(update_fields=changed)
    return lora
