"""Files other tools keep next to a LoRA, which move, rename, trash and restore carry along
(docs/library.md#sidecars).

Known sidecars (read by the scan, ``loras.adopt``; written by ``loras.services.sidecars``):

- ``<stem>.civitai.info`` — Civitai Helper (A1111 extension): the Civitai model version JSON.
- ``<stem>.metadata.json`` — ComfyUI-Lora-Manager.
- ``<stem>.json`` — A1111's extra-networks user metadata (also civitai-browser-plus).
- previews: ``<stem>.preview.<ext>`` and ``<stem>.<ext>`` for the image extensions
  ``.png .jpg .jpeg .webp .gif`` and the video extensions ``.mp4 .webm``.

Every other file named ``<stem>.<anything>`` in the same folder (``.txt``, ``.yaml``,
``.preview.mp4``...) is a sidecar too and travels with the file, unless it is itself a model
file or belongs to a longer stem (``a.v2.safetensors``'s files are not ``a.safetensors``'s).
"""

from __future__ import annotations

import os

CIVITAI_INFO_SUFFIX = ".civitai.info"
LORA_MANAGER_SUFFIX = ".metadata.json"
A1111_SUFFIX = ".json"
INFO_SUFFIXES = (CIVITAI_INFO_SUFFIX, LORA_MANAGER_SUFFIX, A1111_SUFFIX)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".gif")
VIDEO_EXTENSIONS = (".mp4", ".webm")
PREVIEW_SUFFIXES = tuple(f"{mid}{ext}" for mid in (".preview", "")
                         for ext in IMAGE_EXTENSIONS + VIDEO_EXTENSIONS)
SIDECAR_SUFFIXES = INFO_SUFFIXES + PREVIEW_SUFFIXES
# Files that are models themselves, never anyone's sidecar.
MODEL_EXTENSIONS = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf")


def stem_of(path: str) -> str:
    """``/a/b/name.safetensors`` -> ``/a/b/name``."""
    base, _ = os.path.splitext(path)
    return base


def _is_model(name: str) -> bool:
    return name.lower().endswith(MODEL_EXTENSIONS)


def sidecar_suffixes(path: str, *, known_only: bool = False) -> list[str]:
    """The suffixes of every existing ``<stem>.*`` sidecar of the model file ``path``: known
    suffixes first (in ``SIDECAR_SUFFIXES`` order), then the others sorted. A name that is a
    model file, or that starts with the stem of another model file in the folder with a longer
    stem, is not a sidecar. Symlinks count when their target is a file.

    ``known_only``: only ``SIDECAR_SUFFIXES``, by one ``stat`` each, without listing the folder
    (a plan over thousands of files in one folder; the move itself lists them all).
    """
    stem = stem_of(path)
    if known_only:
        return [suffix for suffix in SIDECAR_SUFFIXES if os.path.isfile(stem + suffix)]
    folder, base = os.path.split(path)
    prefix = os.path.basename(stem) + "."
    try:
        with os.scandir(folder or ".") as entries:
            candidates = [e.name for e in entries if e.name.startswith(prefix) and e.name != base]
    except OSError:
        return []
    longer = [os.path.splitext(n)[0] for n in candidates if _is_model(n)]
    found = [n[len(prefix) - 1:] for n in candidates
             if not _is_model(n) and not n.endswith((".part", ".tmp"))
             and not any(n.startswith(o + ".") for o in longer)
             and os.path.isfile(os.path.join(folder, n))]
    known = [s for s in SIDECAR_SUFFIXES if s in found]
    return known + sorted(s for s in found if s not in SIDECAR_SUFFIXES)


def sidecar_paths(path: str) -> list[str]:
    """Existing sidecar files of the model file ``path`` (absolute paths), see
    :func:`sidecar_suffixes`."""
    stem = stem_of(path)
    return [stem + suffix for suffix in sidecar_suffixes(path)]


def preview_path(path: str) -> str | None:
    """The first existing preview (image or video) of the model file ``path``, or None."""
    stem = stem_of(path)
    return next((stem + s for s in PREVIEW_SUFFIXES if os.path.isfile(stem + s)), None)


def preview_type(path: str) -> str:
    """``"video"`` for a ``.mp4``/``.webm`` preview, else ``"image"`` (an animated ``.gif`` is
    an image: ``<img>`` plays it)."""
    return "video" if path.lower().endswith(VIDEO_EXTENSIONS) else "image"
