"""Export and import of what users added to the library, keyed by each file's SHA-256
(docs/library.md#export-and-import): tags, notes, tips, trigger words, preferred weight, NSFW
level, a base model the user set, excluded, the Civitai link and JSON, ignored updates and
favourites (per user, by user name). A new install restores them with
``manage.py library_import`` after its first scan.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from core.exceptions import ApplicationError

from ..models import LoraFavorite, LoraModel
from ..triggers import trigger_words_merge

FORMAT = "atelier-library-export"
VERSION = 1
TEXT_FIELDS = ("notes", "usage_tips", "description")


def _entry(lora: LoraModel, favorited_by: list[str]) -> dict:
    return {
        "sha256": lora.sha256, "name": lora.name, "relative_path": lora.relative_path,
        "tags": list(lora.tags or []), "notes": lora.notes, "usage_tips": lora.usage_tips,
        "description": lora.description, "trigger_words": list(lora.trigger_words or []),
        "preferred_weight": lora.preferred_weight, "nsfw_level": lora.nsfw_level,
        "base_model": lora.base_model, "excluded": lora.excluded,
        "user_overrides": dict(lora.user_overrides or {}),
        "civitai_model_id": lora.civitai_model_id, "civitai_version_id": lora.civitai_version_id,
        "civitai": lora.civitai or {},
        "update_ignored_versions": list(lora.update_ignored_versions or []),
        "update_ignore_model": lora.update_ignore_model,
        "favorite": lora.favorite, "favorited_by": favorited_by,
    }


def library_export() -> dict:
    """Every hashed, non-trashed LoRA's user data: ``{"format", "version", "exported_at",
    "loras": [entry]}`` (entry keys: see docs/library.md#export-and-import), sorted by
    SHA-256 then path."""
    favs: dict[int, list[str]] = {}
    for lora_id, username in (LoraFavorite.objects.order_by("user__username")
                              .values_list("lora_id", "user__username")):
        favs.setdefault(lora_id, []).append(username)
    rows = (LoraModel.objects.exclude(status=LoraModel.Status.TRASHED).exclude(sha256="")
            .order_by("sha256", "relative_path"))
    return {"format": FORMAT, "version": VERSION, "exported_at": timezone.now().isoformat(),
            "loras": [_entry(lora, favs.get(lora.pk, [])) for lora in rows.iterator()]}


def _restore(lora: LoraModel, entry: dict) -> None:
    """Apply one entry to ``lora`` without losing what the new install already has: lists are
    merged, texts and numbers fill blanks or win when the export has a value."""
    lora.tags = list(dict.fromkeys([*(lora.tags or []),
                                    *[t for t in entry.get("tags") or [] if isinstance(t, str)]]))
    overrides = {**(lora.user_overrides or {}), **(entry.get("user_overrides") or {})}
    lora.user_overrides = overrides
    lora.trigger_words = trigger_words_merge(
        entry.get("trigger_words") or [], lora.trigger_words,
        removed=overrides.get("trigger_words_removed") or ())
    for name in TEXT_FIELDS:
        if isinstance(entry.get(name), str) and entry[name]:
            setattr(lora, name, entry[name])
    if isinstance(entry.get("preferred_weight"), (int, float)):
        lora.preferred_weight = float(entry["preferred_weight"])
    if isinstance(entry.get("nsfw_level"), int) and entry["nsfw_level"]:
        lora.nsfw_level = entry["nsfw_level"]
    if overrides.get("base_model") and entry.get("base_model"):
        lora.base_model = str(entry["base_model"])[:50]
    if entry.get("excluded") is True:
        lora.excluded = True
    if entry.get("civitai_version_id"):
        lora.civitai_version_id = int(entry["civitai_version_id"])
        lora.civitai_model_id = entry.get("civitai_model_id")
        if isinstance(entry.get("civitai"), dict) and entry["civitai"]:
            lora.civitai = entry["civitai"]
            if not overrides.get("base_model") and entry.get("base_model"):
                lora.base_model = str(entry["base_model"])[:50]
    lora.update_ignored_versions = sorted({*(lora.update_ignored_versions or []),
                                           *[int(v) for v in entry.get("update_ignored_versions")
                                             or [] if isinstance(v, int)]})
    if entry.get("update_ignore_model") is True:
        lora.update_ignore_model = True
    if entry.get("favorite") is True:
        lora.favorite = True
    lora.save()


def library_import(*, data: dict) -> dict:
    """Restore an export (:func:`library_export`) onto the present LoRAs with the same SHA-256
    (every copy when a file is in the library twice). Favourites go to the users with those
    names who exist here.

    Returns ``{"entries", "matched", "unmatched": [sha256...], "favorites"}``.

    Raises:
        ApplicationError: 400 ``invalid_export`` when ``data`` is not an export of this format.
    """
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(
            data.get("loras"), list):
        raise ApplicationError("invalid_export", f"Not an {FORMAT} file.")
    if data.get("version") != VERSION:
        raise ApplicationError("invalid_export", f"Export version {data.get('version')!r} is "
                               f"not {VERSION}.")
    users = {u.get_username(): u for u in get_user_model().objects.all()}
    matched, unmatched, favorites = 0, [], 0
    with transaction.atomic():
        for entry in data["loras"]:
            sha = str((entry or {}).get("sha256") or "").lower() if isinstance(entry, dict) \
                else ""
            targets = list(LoraModel.objects.filter(sha256=sha, status=LoraModel.Status.PRESENT)
                           .order_by("pk")) if sha else []
            if not targets:
                unmatched.append(sha)
                continue
            for lora in targets:
                _restore(lora, entry)
                matched += 1
                for username in entry.get("favorited_by") or []:
                    user = users.get(username)
                    if user is not None:
                        favorites += LoraFavorite.objects.get_or_create(user=user,
                                                                        lora=lora)[1]
    return {"entries": len(data["loras"]), "matched": matched, "unmatched": unmatched,
            "favorites": favorites}
