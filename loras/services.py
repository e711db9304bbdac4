"""Writes to the LoRA library."""

from __future__ import annotations

import os

from core.exceptions import ApplicationError

from .hashing import file_hashes
from .models import LoraModel


def lora_register(*, path: str, name: str | None = None, base_model: str = "") -> LoraModel:
    """Add (or update by name) the LoRA file at ``path``, hashing it.

    Raises:
        ApplicationError: 400 ``lora_not_found`` when the file does not exist or is not
            a ``.safetensors`` file.
    """
    path = os.path.abspath(path)
    if not os.path.isfile(path) or not path.endswith(".safetensors"):
        raise ApplicationError("lora_not_found", f"No .safetensors file at {path}.")
    hashes = file_hashes(path)
    name = name or os.path.splitext(os.path.basename(path))[0]
    lora, _ = LoraModel.objects.update_or_create(
        name=name,
        defaults={"path": path, "sha256": hashes.sha256, "autov3": hashes.autov3,
                  "size": hashes.size, "base_model": base_model},
    )
    return lora
