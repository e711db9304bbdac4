"""Adopt what other tools already saved next to a LoRA file, so nothing is fetched again.

- ``<stem>.civitai.info`` (Civitai Helper for A1111): the Civitai model-version JSON
  (docs/protocols.md#civitai-model-versions: ``id``, ``modelId``, ``baseModel``,
  ``trainedWords``, ``nsfwLevel`` bitmask, ``model: {name, type, nsfw}``, ``images``...).
- ``<stem>.metadata.json`` (ComfyUI-Lora-Manager, ``py/utils/models.py: LoraMetadata``):
  ``{file_name, model_name, file_path, size, modified, sha256, base_model, preview_url,
  preview_nsfw_level, usage_tips (a JSON string like {"strength": 0.8}), notes, from_civitai,
  civitai (the model-version JSON), tags, modelDescription, favorite?}``.
- ``<stem>.json`` (A1111's extra-networks user metadata, also written by civitai-browser-plus;
  docs/library.md#sidecars): ``"activation text"`` (comma-separated trigger words),
  ``"preferred weight"`` (0 = not set), ``"description"``, ``"notes"``, ``"sd version"``
  (``SD1``/``SD2``/``SDXL``/``Unknown``).
- previews: the first of ``loras.sidecars.PREVIEW_SUFFIXES`` that exists (videos included).

Field by field, the Civitai Helper file wins over the Lora-Manager one, which wins over the
A1111 one; trigger words are merged from all three (``loras.triggers``), never replaced.
"""

from __future__ import annotations

import json
import os

from .paths import relative_to_root
from .sidecars import A1111_SUFFIX, preview_path, stem_of
from .triggers import split_activation_text, trigger_words_merge

SIDECAR_MAX_BYTES = 16 * 1024 * 1024  # larger "sidecars" are not JSON we want
UNKNOWN_BASE_MODELS = {"", "unknown", "other"}
# A1111's "sd version" as Civitai base model names (the library's vocabulary).
SD_VERSION_BASE_MODELS = {"SD1": "SD 1.5", "SD2": "SD 2.1", "SDXL": "SDXL 1.0"}


def _read_json(path: str) -> dict | None:
    """The JSON object in ``path``; None when absent. Raises ValueError when unreadable."""
    try:
        if os.path.getsize(path) > SIDECAR_MAX_BYTES:
            raise ValueError(f"over {SIDECAR_MAX_BYTES} bytes")
        with open(path, "rb") as fh:
            data = json.loads(fh.read().decode("utf-8", "replace"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(data, dict):
        raise ValueError(f"a JSON {type(data).__name__}, not an object")
    return data


def _positive_int(value) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _strings(value, *, limit: int = 100) -> list[str]:
    if not isinstance(value, list):
        return []
    out = []
    for item in value:
        if isinstance(item, dict):  # Civitai tags may be {"name": ...}
            item = item.get("name")
        if isinstance(item, str) and item.strip() and item.strip() not in out:
            out.append(item.strip()[:200])
    return out[:limit]


def civitai_version_fields(version: dict) -> dict:
    """Field values of a Civitai model-version JSON (Civitai Helper's ``.civitai.info``, or the
    ``civitai`` object of Lora-Manager): ids, trigger words, base model, NSFW level, tags.

    ``nsfw_level`` is Civitai's bitmask (PG=1, PG13=2, R=4, X=8, XXX=16); a version without one
    whose ``model.nsfw`` is true counts as R (4).
    """
    fields: dict = {}
    model = version.get("model") if isinstance(version.get("model"), dict) else {}
    version_id = _positive_int(version.get("id"))
    model_id = _positive_int(version.get("modelId"))
    if version_id:
        fields["civitai_version_id"] = version_id
    if model_id:
        fields["civitai_model_id"] = model_id
    if version_id or model_id:
        fields["civitai"] = version
    words = _strings(version.get("trainedWords"))
    if words:
        fields["trigger_words"] = words
    base = version.get("baseModel")
    if isinstance(base, str) and base.strip().lower() not in UNKNOWN_BASE_MODELS:
        fields["base_model"] = base.strip()[:50]
    level = _positive_int(version.get("nsfwLevel"))
    if level:
        fields["nsfw_level"] = min(level, 32767)
    elif model.get("nsfw") is True:
        fields["nsfw_level"] = 4
    tags = _strings(version.get("tags")) or _strings(model.get("tags"))
    if tags:
        fields["tags"] = tags
    return fields


def lora_manager_fields(data: dict) -> dict:
    """Field values of a ComfyUI-Lora-Manager ``.metadata.json``."""
    fields: dict = {}
    civitai = data.get("civitai")
    if isinstance(civitai, dict) and civitai:
        fields.update(civitai_version_fields(civitai))
    base = data.get("base_model")
    if isinstance(base, str) and base.strip().lower() not in UNKNOWN_BASE_MODELS:
        fields["base_model"] = base.strip()[:50]
    tags = _strings(data.get("tags"))
    if tags:
        fields["tags"] = tags
    level = _positive_int(data.get("preview_nsfw_level"))
    if level and "nsfw_level" not in fields:
        fields["nsfw_level"] = min(level, 32767)
    if isinstance(data.get("notes"), str) and data["notes"].strip():
        fields["notes"] = data["notes"]
    tips = data.get("usage_tips")
    if isinstance(tips, str) and tips.strip() and tips.strip() != "{}":
        fields["usage_tips"] = tips
        try:
            parsed = json.loads(tips)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and isinstance(parsed.get("strength"), (int, float)):
            fields["preferred_weight"] = float(parsed["strength"])
    if data.get("favorite") is True:
        fields["favorite"] = True
    return fields


def a1111_fields(data: dict) -> dict:
    """Field values of an A1111 / civitai-browser-plus ``<stem>.json``: ``trigger_words``,
    ``preferred_weight`` (0 is A1111's "not set"), ``description``, ``notes`` and
    ``base_model_hint`` (from ``"sd version"``; used only when nothing else names one)."""
    fields: dict = {}
    words = split_activation_text(data.get("activation text"))
    if words:
        fields["trigger_words"] = words
    weight = data.get("preferred weight")
    if isinstance(weight, (int, float)) and not isinstance(weight, bool) and weight:
        fields["preferred_weight"] = float(weight)
    for key in ("description", "notes"):
        if isinstance(data.get(key), str) and data[key].strip():
            fields[key] = data[key]
    hint = SD_VERSION_BASE_MODELS.get(str(data.get("sd version") or "").strip().upper())
    if hint:
        fields["base_model_hint"] = hint
    return fields


def sidecars_adopt(*, path: str, root_path: str) -> tuple[dict, list[str]]:
    """Field values for the LoRA file ``path`` (absolute) from its sidecars, and the problems
    met (unreadable sidecars, as ``"<file name>: <why>"``).

    Keys (only those found): ``civitai_model_id``, ``civitai_version_id``, ``civitai`` (dict),
    ``trigger_words`` (merged from every sidecar), ``tags``, ``base_model`` (Civitai name),
    ``base_model_hint`` (A1111's ``sd version``), ``nsfw_level``, ``notes``, ``description``,
    ``usage_tips``, ``preferred_weight``, ``favorite``, ``preview`` (path relative to
    ``root_path``, '/'-separated).
    """
    stem = stem_of(path)
    fields: dict = {}
    problems: list[str] = []
    words: list[list[str]] = []
    for suffix, reader in ((A1111_SUFFIX, a1111_fields),
                           (".metadata.json", lora_manager_fields),
                           (".civitai.info", civitai_version_fields)):
        try:
            data = _read_json(stem + suffix)
        except ValueError as exc:
            problems.append(f"{os.path.basename(stem + suffix)}: {exc}")
            continue
        if data:
            found = reader(data)
            words.append(found.pop("trigger_words", []))
            fields.update(found)  # .civitai.info comes last and wins
    merged = trigger_words_merge([], *words)
    if merged:
        fields["trigger_words"] = merged
    preview = preview_path(path)
    if preview:
        relative = relative_to_root(root_path, preview)
        if relative:
            fields["preview"] = relative
    return fields, problems
