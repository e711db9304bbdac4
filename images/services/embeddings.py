"""Textual inversion embeddings named in a prompt, found and checked before a request is queued
(docs/checkpoints.md#textual-inversion-embeddings).

The files are those under ``settings.EMBEDDING_ROOTS``; an embedding's name is its file stem and
a prompt calls it by that name as a whole word (any case, as A1111 matches through its
lower-casing CLIP tokenizer). Listing the roots is a directory walk per call; each file's
SHA-256 and vector widths are read once and kept while its size and mtime stay the same.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from django.conf import settings

from core.exceptions import ApplicationError
from providers.base import EmbeddingSpec
from providers.checkpoints import detect_file, detect_folder, safetensors_shapes
from providers.textual_inversion import embedding_widths, name_pattern

SAFE_SUFFIX = ".safetensors"
#: Pickle embeddings (A1111 also reads these): listed so that a prompt naming one gets a clear
#: refusal, never loaded.
UNSAFE_SUFFIXES = (".pt", ".bin", ".ckpt", ".pth")

_lock = threading.Lock()
#: path -> ((size, mtime_ns), {"sha256", "widths"})
_file_info: dict[str, tuple[tuple[int, int], dict]] = {}


def embedding_files() -> dict[str, dict]:
    """``{lower-cased name: {"name", "path", "unsafe"}}`` of every embedding file under
    ``EMBEDDING_ROOTS`` (hidden entries skipped; the first root wins a name twice)."""
    out: dict[str, dict] = {}
    for raw in getattr(settings, "EMBEDDING_ROOTS", []) or []:
        root = Path(raw).expanduser()
        if not root.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for filename in sorted(filenames):
                lower = filename.lower()
                if filename.startswith(".") or not lower.endswith(
                        (SAFE_SUFFIX, *UNSAFE_SUFFIXES)):
                    continue
                stem = os.path.splitext(filename)[0]
                out.setdefault(stem.lower(), {
                    "name": stem, "path": os.path.join(dirpath, filename),
                    "unsafe": not lower.endswith(SAFE_SUFFIX)})
    return out


def embedding_info(path: str) -> dict:
    """``{"sha256": 64 hex, "widths": (int, ...)}`` of a ``.safetensors`` embedding, cached
    while its size and mtime stay the same."""
    stat = os.stat(path)
    key = (stat.st_size, stat.st_mtime_ns)
    with _lock:
        cached = _file_info.get(path)
    if cached and cached[0] == key:
        return cached[1]
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    info = {"sha256": digest.hexdigest(), "widths": embedding_widths(path)}
    with _lock:
        _file_info[path] = (key, info)
    return info


def model_text_widths(profile) -> tuple[int, ...]:
    """The token-vector widths of ``profile``'s CLIP text encoders (``(768,)`` SD 1.x,
    ``(1024,)`` SD 2.x, ``(768, 1280)`` SDXL, ``(32,)`` the demo model; ``()`` unknown or none),
    from a diffusers folder's ``text_encoder*/config.json`` or a single file's tensor shapes."""
    path = Path(profile.model_path or "").expanduser()
    if path.is_dir():
        return detect_folder(path).text_widths
    if path.is_file():
        return detect_file(path).text_widths
    return ()


def embeddings_for_prompt(prompt: str, negative: str, profile) -> list[dict]:
    """The embeddings ``prompt`` or ``negative`` (LoRA tags removed) call by name, checked
    against ``profile``'s model.

    Returns:
        ``[{"name", "path", "sha256"}]`` (the :class:`providers.base.EmbeddingSpec` fields),
        in name order; ``[]`` for providers other than ``diffusers_local`` (remote engines
        resolve names themselves) or when no name occurs.

    Raises:
        ApplicationError: 400 ``embedding_unsafe`` (a pickle file is named) or
            ``embedding_incompatible`` (its vector widths differ from the model's text
            encoders), naming the embedding; nothing is queued.
    """
    if profile.provider != "diffusers_local":
        return []
    text = f"{prompt}\n{negative or ''}"
    files = embedding_files()
    named = [f for _, f in sorted(files.items()) if name_pattern(f["name"]).search(text)]
    if not named:
        return []
    model = model_text_widths(profile)
    out = []
    for item in named:
        name = item["name"]
        if item["unsafe"]:
            message = (f"Embedding {name!r} is a {Path(item['path']).suffix} file, a Python "
                       "pickle, which is never loaded (it could run arbitrary code); convert "
                       "it to .safetensors.")
            raise ApplicationError("embedding_unsafe", message, fields={"prompt": [message]})
        info = embedding_info(item["path"])
        if info["widths"] != model:
            have = "+".join(str(w) for w in info["widths"]) or "no embedding tensor"
            want = "+".join(str(w) for w in model) or "unknown"
            message = (f"Embedding {name!r} ({have} wide) does not fit model {profile.slug!r} "
                       f"(text encoder width {want}).")
            raise ApplicationError("embedding_incompatible", message,
                                   fields={"prompt": [message]})
        out.append({"name": name, "path": item["path"], "sha256": info["sha256"]})
    return out


def embeddings_list() -> list[dict]:
    """Every embedding under ``EMBEDDING_ROOTS`` for listings (A1111's ``/sdapi/v1/embeddings``
    splits them into loaded and skipped): ``[{"name", "path", "unsafe", "widths", "vectors",
    "sha256"}]`` by name; a pickle file has empty ``widths``, ``vectors`` 0 and no hash (it is
    never opened)."""
    out = []
    for _, item in sorted(embedding_files().items()):
        entry = {**item, "widths": (), "vectors": 0, "sha256": ""}
        if not item["unsafe"]:
            info = embedding_info(item["path"])
            shapes = safetensors_shapes(item["path"])
            first = next(iter(shapes.values()), [])
            entry.update(widths=info["widths"], sha256=info["sha256"],
                         vectors=int(first[0]) if len(first) == 2 else 1 if first else 0)
        out.append(entry)
    return out


def embedding_specs(items: list[dict] | None) -> tuple[EmbeddingSpec, ...]:
    """The stored ``GenerationRequest.embeddings`` as provider specs."""
    return tuple(EmbeddingSpec(name=x["name"], path=x["path"], sha256=x["sha256"])
                 for x in items or [])
