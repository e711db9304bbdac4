"""Writes to the LoRA library. Library files are only touched through services."""

from __future__ import annotations

import os

from django.conf import settings

from core.exceptions import ApplicationError

from .hashing import file_hashes
from .models import LibraryRoot, LoraModel
from .paths import relative_to_root


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
    """Add (or refresh) the LoRA file at ``path``, hashing it; its folder becomes a root when
    no library root holds it.

    Raises:
        ApplicationError: 400 ``lora_not_found`` when the file does not exist or is not
            a ``.safetensors`` file.
    """
    path = os.path.abspath(path)
    if not os.path.isfile(path) or not path.endswith(".safetensors"):
        raise ApplicationError("lora_not_found", f"No .safetensors file at {path}.")
    root = root_for_path(path=path)
    relative = relative_to_root(root.path, path)
    hashes = file_hashes(path)
    stat = os.stat(path)
    folder, _, file_name = relative.rpartition("/")
    lora, _ = LoraModel.objects.update_or_create(
        root=root, relative_path=relative, status=LoraModel.Status.PRESENT,
        defaults={"name": name or os.path.splitext(file_name)[0], "folder": folder,
                  "file_name": file_name, "sha256": hashes.sha256, "autov3": hashes.autov3,
                  "size": hashes.size, "mtime": stat.st_mtime, "inode": stat.st_ino,
                  **({"base_model": base_model} if base_model else {})},
    )
    return lora
