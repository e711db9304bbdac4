"""Sidecars Atelier writes next to a LoRA so other tools see what it knows
(docs/library.md#sidecars; on by default, ``WRITE_SIDECARS=False`` turns it off):

- ``<stem>.civitai.info``: the Civitai model-version JSON exactly as fetched (Civitai Helper for
  A1111 and ComfyUI-Lora-Manager read it; Atelier's own scan adopts it, ``loras.adopt``);
- ``<stem>.json``: A1111's extra-networks user metadata (the Lora page's "edit metadata"
  dialog, also written by civitai-browser-plus): ``"activation text"`` (trigger words joined
  with ", "), ``"preferred weight"`` (a number; A1111 reads 0 as "not set") and ``"notes"``.
  The other keys of an existing file (``"description"``, ``"sd version"``,
  ``"negative text"``, anything a tool added) are kept as they are; ``"sd version"`` is only
  filled when absent.

Both are written atomically (temporary file + rename, mode 0666 & ~umask: ``loras.files``) and
never next to a file whose real path leaves its root (``loras.paths``). A sidecar that cannot
be written is logged and skipped: the database keeps the data, and a write never fails an edit
or a refresh.
"""

from __future__ import annotations

import json
import logging
import os

from django.conf import settings

from core.exceptions import ApplicationError

from ..files import write_atomic
from ..models import LoraModel
from ..paths import real_path_in_root
from ..sidecars import A1111_SUFFIX, CIVITAI_INFO_SUFFIX, stem_of

log = logging.getLogger(__name__)
SD_VERSIONS = (("sdxl", "SDXL"), ("pony", "SDXL"), ("illustrious", "SDXL"), ("sd 2", "SD2"),
               ("sd 1", "SD1"))  # A1111's "sd version" choices: SD1, SD2, SDXL, Unknown


def _enabled() -> bool:
    return bool(getattr(settings, "WRITE_SIDECARS", True))


def _stem(lora: LoraModel) -> str | None:
    """The guarded absolute stem of ``lora``'s file, or None when it may not be written next to
    (outside its root, not present, or the file is gone)."""
    if lora.status != LoraModel.Status.PRESENT:
        return None
    try:
        path = real_path_in_root(lora.root.path, lora.abs_path)
    except ApplicationError:
        return None
    return stem_of(path) if os.path.isfile(path) else None


def sd_version(base_model: str) -> str:
    """A1111's ``"sd version"`` for a base model name ("SD 1.5" -> "SD1", "SDXL 1.0"/"Pony"
    -> "SDXL"); "Unknown" otherwise."""
    lowered = (base_model or "").lower()
    return next((label for key, label in SD_VERSIONS if key in lowered), "Unknown")


def a1111_user_metadata(*, lora: LoraModel, existing: dict | None = None) -> dict:
    """The ``<stem>.json`` content for ``lora``: ``existing`` with the keys Atelier manages
    replaced (activation text, notes, preferred weight when set) and ``"sd version"`` added
    when missing."""
    data = dict(existing or {})
    data["activation text"] = ", ".join(lora.trigger_words or [])
    if lora.preferred_weight is not None:
        data["preferred weight"] = lora.preferred_weight
    data["notes"] = lora.notes or ""
    if not data.get("sd version") and lora.base_model:
        data["sd version"] = sd_version(lora.base_model)
    return data


def _read_object(path: str) -> dict | None:
    """The JSON object in ``path``; {} when absent; None when it is not a JSON object (left
    alone: Atelier never replaces a file it cannot read)."""
    try:
        with open(path, "rb") as fh:
            data = json.loads(fh.read().decode("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_json(path: str, data: dict) -> bool:
    try:
        write_atomic(path, (json.dumps(data, indent=4, ensure_ascii=False) + "\n").encode())
    except OSError as exc:
        log.warning("sidecar %s not written: %s", os.path.basename(path), exc)
        return False
    return True


def sidecars_write(*, lora: LoraModel, version: dict | None = None) -> list[str]:
    """Write ``lora``'s sidecars when ``WRITE_SIDECARS`` is on: ``<stem>.civitai.info`` from
    ``version`` (the Civitai model-version JSON as fetched; skipped when None) and the A1111
    ``<stem>.json`` (merged into an existing one; an unreadable one is left alone).

    Returns the file names written. Never raises for file-system errors.
    """
    if not _enabled():
        return []
    stem = _stem(lora)
    if stem is None:
        return []
    written = []
    if version:
        if _write_json(stem + CIVITAI_INFO_SUFFIX, version):
            written.append(os.path.basename(stem + CIVITAI_INFO_SUFFIX))
    path = stem + A1111_SUFFIX
    existing = _read_object(path)
    if existing is not None:
        wanted = a1111_user_metadata(lora=lora, existing=existing)
        if wanted != existing and _write_json(path, wanted):
            written.append(os.path.basename(path))
    return written
