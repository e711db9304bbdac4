"""Library checkpoints: model profiles made from the files under ``CHECKPOINT_ROOTS``.

:func:`checkpoints_sync` lists single-file checkpoints and diffusers folders in the roots
(``settings.CHECKPOINT_ROOTS``, default ``MODELS_DIR/Stable-diffusion``, A1111's layout), detects
each one's architecture from its tensor names and shapes (the ``.safetensors`` header only,
never the weights) and keeps one :class:`~providers.models.ModelProfile` per file with
``source="library"``: slug from the file stem, provider ``diffusers_local``, the architecture's
default size, steps and CFG scale (docs/checkpoints.md#defaults). A request then names the
checkpoint by its stem (``"model": "<stem>"``); nothing has to be typed into the admin.

Rules (docs/checkpoints.md#sync):

- a library profile whose synced fields a person changed (admin, API) becomes ``source="manual"``
  and is never touched again; a file that already has a manual profile gets no second one;
- a vanished file disables its profile (images keep referring to it, so it is not deleted);
- pickle formats (``.ckpt``, ``.pt``, ``.pth``, ``.bin``) are listed disabled with the note
  "unsafe format, not loaded": loading a pickle can run arbitrary code, so they are never opened;
- a single file needs a diffusers config folder of the same shapes (checkpoints hold no configs
  or tokenizers): Atelier's shipped ``providers/configs/<type>``, the demo model, or a diffusers
  folder in the roots, matched by text-encoder width and UNet channels; without one the profile
  is disabled with a note saying what to add.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.text import slugify

from . import diffusers_pipelines as dp
from .base import ProviderError
from .models import ModelProfile

log = logging.getLogger(__name__)

#: Suffixes of pickle files: listed, never opened.
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
UNSAFE_NOTE = ("Unsafe format, not loaded: {suffix} files are Python pickles and loading one can "
               "run arbitrary code. Convert it to .safetensors to use it.")

#: Per architecture: pipeline type, default size (square, pixels), steps, CFG scale, max side.
#: Sources and reasons: docs/checkpoints.md#defaults.
ARCHITECTURES: dict[str, dict[str, Any]] = {
    "sd1": {"label": "SD 1.x", "pipeline_type": "sd", "size": 512, "steps": 25, "cfg": 7.0,
            "max": 1024},
    "sd2": {"label": "SD 2.x", "pipeline_type": "sd", "size": 768, "steps": 25, "cfg": 7.0,
            "max": 1536},
    "sdxl": {"label": "SDXL", "pipeline_type": "sdxl", "size": 1024, "steps": 30, "cfg": 6.0,
             "max": 2048},
    "flux": {"label": "Flux", "pipeline_type": "flux", "size": 1024, "steps": 20, "cfg": 3.5,
             "max": 2048},
    "sd3": {"label": "SD 3", "pipeline_type": "", "size": 1024, "steps": 28, "cfg": 7.0,
            "max": 2048},
}

#: The profile fields the sync writes; a difference from ``library_state`` is a hand edit.
SYNCED = ("name", "provider", "pipeline_type", "model_path", "options", "default_width",
          "default_height", "default_steps", "default_guidance_scale", "max_width",
          "max_height", "enabled")


# ----------------------------------------------------------------------------- reading files
def safetensors_shapes(path: Path | str) -> dict[str, list[int]]:
    """``{tensor name: shape}`` from a ``.safetensors`` header (8 + N bytes; N capped at
    64 MiB). Returns ``{}`` for an unreadable or malformed file. Format: the safetensors spec
    (an 8-byte little-endian header length, then a JSON object of name -> dtype/shape/offsets).
    """
    try:
        with open(path, "rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            if size > 64 * 1024 * 1024:
                return {}
            header = json.loads(fh.read(size))
    except (OSError, ValueError, struct.error):
        return {}
    if not isinstance(header, dict):
        return {}
    return {k: list(v.get("shape") or []) for k, v in header.items()
            if k != "__metadata__" and isinstance(v, dict)}


@dataclass
class Detected:
    """What a checkpoint file or folder is: ``arch`` (a key of :data:`ARCHITECTURES` or ``""``),
    ``text_widths`` (hidden size of each CLIP text encoder, in order), ``unet_channels`` (first
    UNet block's channels, 0 unknown)."""

    arch: str = ""
    text_widths: tuple[int, ...] = ()
    unet_channels: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _width(shapes: dict[str, list[int]], *keys: str) -> int:
    for key in keys:
        shape = shapes.get(key)
        if shape and len(shape) == 2:
            return int(shape[1])
    return 0


def detect_file(path: Path | str) -> Detected:
    """The architecture of a single-file checkpoint from its tensor names (original LDM/A1111
    layouts: ``model.diffusion_model.`` UNet, ``cond_stage_model.transformer.`` CLIP ViT-L for
    SD 1.x, ``cond_stage_model.model.`` OpenCLIP for SD 2.x, ``conditioner.embedders.0/1`` for
    SDXL, ``joint_blocks`` for SD3, ``double_blocks`` for Flux). ``arch`` is ``""`` for anything
    else (LoRAs, VAEs, embeddings)."""
    shapes = safetensors_shapes(path)
    keys = shapes.keys()
    conv_in = shapes.get("model.diffusion_model.input_blocks.0.0.weight") or [0]
    unet = int(conv_in[0])
    if any(k.startswith("conditioner.embedders.1.") for k in keys):
        return Detected("sdxl", (
            _width(shapes, "conditioner.embedders.0.transformer.text_model.embeddings."
                           "token_embedding.weight"),
            _width(shapes, "conditioner.embedders.1.model.token_embedding.weight")), unet)
    if any(".double_blocks." in k or k.startswith("double_blocks.") for k in keys):
        return Detected("flux")
    if any(k.startswith("model.diffusion_model.joint_blocks.") for k in keys):
        return Detected("sd3")
    if any(k.startswith("model.diffusion_model.") for k in keys):
        if any(k.startswith("cond_stage_model.model.") for k in keys):
            return Detected("sd2", (_width(shapes, "cond_stage_model.model.token_embedding."
                                                   "weight"),), unet)
        return Detected("sd1", (_width(
            shapes, "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight",
            "cond_stage_model.transformer.embeddings.token_embedding.weight"),), unet)
    return Detected()


def _json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def detect_folder(folder: Path) -> Detected:
    """The architecture of a diffusers folder from ``model_index.json`` and its component
    configs (``text_encoder*/config.json`` ``hidden_size``, ``unet/config.json``)."""
    pipeline_type = dp.folder_type(folder)
    widths = tuple(int(_json(folder / name / "config.json").get("hidden_size") or 0)
                   for name in ("text_encoder", "text_encoder_2")
                   if (folder / name / "config.json").is_file())
    unet = int((_json(folder / "unet" / "config.json").get("block_out_channels") or [0])[0])
    arch = {"sdxl": "sdxl", "flux": "flux"}.get(pipeline_type, "")
    if pipeline_type == "sd":
        arch = "sd2" if widths[:1] == (1024,) else "sd1"
    return Detected(arch, widths if pipeline_type != "flux" else (), unet)


# ----------------------------------------------------------------------------- finding files
@dataclass
class Found:
    """One checkpoint under a root: ``path`` (absolute), ``stem``, ``kind`` (``"file"``,
    ``"folder"`` or ``"pickle"``) and, once detected, ``detected``."""

    path: Path
    stem: str
    kind: str
    detected: Detected = field(default_factory=Detected)


def checkpoint_roots() -> list[Path]:
    """The existing folders of ``settings.CHECKPOINT_ROOTS`` (resolved, duplicates dropped)."""
    out: list[Path] = []
    for raw in getattr(settings, "CHECKPOINT_ROOTS", []) or []:
        path = Path(raw).expanduser()
        if path.is_dir() and path.resolve() not in out:
            out.append(path.resolve())
    return out


def checkpoints_find(roots: list[Path]) -> list[Found]:
    """Every checkpoint under ``roots``: ``.safetensors`` files that are checkpoints, pickle
    files (by suffix, never opened), diffusers folders (``model_index.json``; not descended
    into). Hidden entries are skipped; symlinked folders are not followed (no loops)."""
    found: list[Found] = []
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            here = Path(dirpath)
            if "model_index.json" in filenames and here != root:
                found.append(Found(here, here.name, "folder", detect_folder(here)))
                dirnames[:] = []
                continue
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith("."):
                    continue
                path = here / name
                lower = name.lower()
                if lower.endswith(".safetensors"):
                    detected = detect_file(path)
                    if detected.arch:
                        found.append(Found(path, path.stem, "file", detected))
                elif lower.endswith(PICKLE_SUFFIXES) and path.is_file():
                    found.append(Found(path, path.stem, "pickle"))
    return found


# ----------------------------------------------------------------------------- configs
def _config_candidates(found: list[Found]) -> list[tuple[Path, Detected]]:
    """Config folders a single file may use: shipped ``providers/configs/<type>``, the demo
    model folder, and the diffusers folders of the roots."""
    folders = [p for p in sorted(dp.CONFIGS_DIR.iterdir()) if (p / "model_index.json").is_file()]
    demo = Path(getattr(settings, "DEMO_MODEL_DIR", "") or "")
    if str(demo) and (demo / "model_index.json").is_file():
        folders.append(demo)
    folders += [f.path for f in found if f.kind == "folder"]
    return [(folder, detect_folder(folder)) for folder in folders]


def config_for(detected: Detected, candidates: list[tuple[Path, Detected]]) -> Path | None:
    """The first candidate folder of the same architecture whose text-encoder widths and UNet
    channels equal the checkpoint's (unknown values match anything)."""
    for folder, cand in candidates:
        if cand.arch != detected.arch:
            continue
        if detected.text_widths and all(detected.text_widths) \
                and cand.text_widths != detected.text_widths:
            continue
        if detected.unet_channels and cand.unet_channels \
                and cand.unet_channels != detected.unet_channels:
            continue
        return folder
    return None


# ----------------------------------------------------------------------------- profiles
def _values(item: Found, candidates: list[tuple[Path, Detected]]) -> tuple[dict, str]:
    """The synced field values of ``item``'s profile and its note."""
    arch = ARCHITECTURES.get(item.detected.arch, ARCHITECTURES["sd1"])
    values = {"name": item.stem[:100], "provider": "diffusers_local",
              "pipeline_type": arch["pipeline_type"] or "sd", "model_path": str(item.path),
              "options": {}, "default_width": arch["size"], "default_height": arch["size"],
              "default_steps": arch["steps"], "default_guidance_scale": arch["cfg"],
              "max_width": arch["max"], "max_height": arch["max"], "enabled": True}
    if item.kind == "pickle":
        values["enabled"] = False
        return values, UNSAFE_NOTE.format(suffix=item.path.suffix.lower())
    if not arch["pipeline_type"]:
        values["enabled"] = False
        return values, f"{arch['label']} checkpoints are recognised but not run by Atelier yet."
    if item.kind == "folder":
        return values, ""
    config = config_for(item.detected, candidates)
    if config is None:
        values["enabled"] = False
        widths = "+".join(str(w) for w in item.detected.text_widths) or "?"
        return values, (f"No config folder for this {arch['label']} checkpoint (text width "
                        f"{widths}): put a diffusers folder of the same model in a checkpoint "
                        "root, or copy this profile and set its option 'config'.")
    if config.parent != dp.CONFIGS_DIR:
        values["options"] = {"config": str(config)}
    try:
        dp._check_tokenizers(str(config))
    except (ProviderError, OSError, ValueError) as exc:
        return values, getattr(exc, "message", str(exc))
    return values, ""


def _unique_slug(stem: str, taken: set[str]) -> str:
    base = (slugify(stem) or "checkpoint")[:90]
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return slug


def _state(profile: ModelProfile) -> dict:
    return {k: getattr(profile, k) for k in SYNCED}


def checkpoints_sync(*, roots: list[Path] | None = None) -> dict[str, Any]:
    """Make the library profiles match the checkpoints under ``roots`` (default
    :func:`checkpoint_roots`). Idempotent; cheap (headers only).

    Returns:
        ``{"created": [slug], "updated": [slug], "disabled": [slug], "unchanged": int,
        "skipped": [path] (a manual profile has it), "roots": [path]}``.
    """
    roots = checkpoint_roots() if roots is None else roots
    found = checkpoints_find(roots)
    candidates = _config_candidates(found)
    result: dict[str, Any] = {"created": [], "updated": [], "disabled": [], "unchanged": 0,
                              "skipped": [], "roots": [str(r) for r in roots]}
    with transaction.atomic():
        profiles = list(ModelProfile.objects.select_for_update().all())
        library = {}
        for profile in profiles:
            if profile.source == "library" and profile.library_state \
                    and _state(profile) != profile.library_state.get("values"):
                # A person changed what the sync wrote: it is theirs from now on.
                profile.source = "manual"
                profile.save(update_fields=["source"])
            if profile.source == "library":
                library[profile.model_path] = profile
        manual_paths = {p.model_path for p in profiles if p.source != "library"}
        taken = {p.slug for p in profiles}
        seen = set()
        for item in found:
            path = str(item.path)
            seen.add(path)
            if path in manual_paths:
                result["skipped"].append(path)
                continue
            values, note = _values(item, candidates)
            profile = library.get(path)
            if profile is None:
                slug = _unique_slug(item.stem, taken)
                taken.add(slug)
                profile = ModelProfile(slug=slug, source="library", is_default=False)
                result["created"].append(slug)
            elif _state(profile) == values and profile.note == note:
                result["unchanged"] += 1
                continue
            else:
                result["updated"].append(profile.slug)
            for key, value in values.items():
                setattr(profile, key, value)
            profile.note = note
            profile.library_state = {"values": values}
            profile.save()
        for path, profile in library.items():
            if path not in seen and profile.enabled:
                profile.enabled = False
                profile.note = "The file is gone from the checkpoint roots."
                profile.library_state = {"values": _state(profile)}
                profile.save()
                result["disabled"].append(profile.slug)
    if result["created"] or result["updated"] or result["disabled"]:
        log.info("Checkpoint sync: %d new, %d updated, %d disabled", len(result["created"]),
                 len(result["updated"]), len(result["disabled"]))
    return result
