"""Files other tools keep next to a LoRA, which move, rename and delete carry along.

- ``<stem>.civitai.info`` — Civitai Helper (A1111 extension): the Civitai model version JSON.
- ``<stem>.metadata.json`` — ComfyUI-Lora-Manager.
- previews: ``<stem>.preview.png|jpg|jpeg|webp`` and ``<stem>.png|jpg|jpeg|webp``.
"""

from __future__ import annotations

import os

INFO_SUFFIXES = (".civitai.info", ".metadata.json")
PREVIEW_SUFFIXES = tuple(f"{mid}{ext}" for mid in (".preview", "")
                         for ext in (".png", ".jpg", ".jpeg", ".webp"))
SIDECAR_SUFFIXES = INFO_SUFFIXES + PREVIEW_SUFFIXES


def stem_of(path: str) -> str:
    """``/a/b/name.safetensors`` -> ``/a/b/name``."""
    base, _ = os.path.splitext(path)
    return base


def sidecar_suffixes(path: str) -> list[str]:
    """The suffixes of the existing sidecar files of the LoRA file ``path``, in suffix order
    (a symlink counts when its target is a file)."""
    stem = stem_of(path)
    return [suffix for suffix in SIDECAR_SUFFIXES if os.path.isfile(stem + suffix)]


def sidecar_paths(path: str) -> list[str]:
    """Existing sidecar files of the LoRA file ``path`` (absolute paths), in suffix order."""
    stem = stem_of(path)
    return [stem + suffix for suffix in sidecar_suffixes(path)]


def preview_path(path: str) -> str | None:
    """The first existing preview image of the LoRA file ``path``, or None."""
    stem = stem_of(path)
    return next((stem + s for s in PREVIEW_SUFFIXES if os.path.isfile(stem + s)), None)
