"""Reads of the LoRA library."""

from __future__ import annotations

from collections import Counter

from django.db.models import Count, QuerySet

from .models import LoraModel


def lora_resolve(*, ref) -> LoraModel | None:
    """The present LoRA named by ``ref``: an id (int or digit string), a name (exact, then
    case-insensitive), or a sha256 / AutoV2 prefix (10+ hex). ``None`` when nothing matches."""
    ref = str(ref).strip()
    qs = LoraModel.objects.filter(status=LoraModel.Status.PRESENT).select_related("root")
    if ref.isdigit():
        found = qs.filter(pk=int(ref)).first()
        if found:
            return found
    found = qs.filter(name=ref).first() or qs.filter(name__iexact=ref).first()
    if found is None and len(ref) >= 10 and all(c in "0123456789abcdefABCDEF" for c in ref):
        found = qs.filter(sha256__startswith=ref.lower()).first()
    return found


# ----------------------------------------------------------------------------- library lists
# Large JSON columns a list item does not show.
LIST_DEFERRED = ("header_metadata", "civitai", "license_flags")


def lora_queryset(*, include_trashed: bool = False):
    """LoRAs with their root joined; trashed rows only when ``include_trashed``."""
    qs = LoraModel.objects.select_related("root")
    if not include_trashed:
        qs = qs.exclude(status=LoraModel.Status.TRASHED)
    return qs


def lora_get(*, pk, include_trashed: bool = False) -> LoraModel:
    """One LoRA by id.

    Raises:
        ApplicationError: 404 ``not_found``.
    """
    from core.exceptions import ApplicationError

    try:
        return lora_queryset(include_trashed=include_trashed).get(pk=int(pk))
    except (LoraModel.DoesNotExist, ValueError, TypeError):
        raise ApplicationError("not_found", "No such LoRA.", status=404) from None


def lora_list(*, params) -> QuerySet[LoraModel]:
    """The LoRAs matching ``params`` (a QueryDict or dict of the ``/api/loras/`` filters, see
    :class:`loras.filters.LoraFilter`), ordered; trashed LoRAs never appear.

    Raises:
        ApplicationError: 400 ``invalid`` with ``fields`` for bad filter values.
    """
    from core.exceptions import ApplicationError

    from .filters import LoraFilter

    fs = LoraFilter(params, queryset=lora_queryset().defer(*LIST_DEFERRED))
    if not fs.is_valid():
        errors = {k: [str(m) for m in v] for k, v in fs.errors.items()}
        field, messages = next(iter(errors.items()))
        raise ApplicationError("invalid", f"{field}: {messages[0]}", fields=errors)
    return fs.qs


def _live():
    return LoraModel.objects.filter(status=LoraModel.Status.PRESENT)


def lora_duplicates() -> list[dict]:
    """Groups of present LoRAs sharing a sha256: ``[{sha256, loras: [LoraModel]}]``, largest
    groups first."""
    hashes = (_live().exclude(sha256="").values("sha256").annotate(n=Count("id"))
              .filter(n__gt=1).order_by("-n", "sha256").values_list("sha256", flat=True))
    return _groups(key="sha256", values=list(hashes))


def lora_filename_conflicts() -> list[dict]:
    """Groups of present LoRAs sharing a ``name`` (file stem, as used in ``<lora:name:w>``)
    across folders or roots: ``[{name, loras: [LoraModel]}]``."""
    names = (_live().values("name").annotate(n=Count("id")).filter(n__gt=1)
             .order_by("-n", "name").values_list("name", flat=True))
    return _groups(key="name", values=list(names))


def _groups(*, key: str, values: list) -> list[dict]:
    rows = lora_queryset().filter(status=LoraModel.Status.PRESENT, **{f"{key}__in": values})
    grouped: dict = {v: [] for v in values}
    for lora in rows.order_by("root_id", "relative_path"):
        grouped[getattr(lora, key)].append(lora)
    return [{key: v, "loras": grouped[v]} for v in values]


def lora_top_tags(*, limit: int = 20) -> list[dict]:
    """The most used tags of present LoRAs: ``[{tag, count}]``, most frequent first (ties by
    name). Counted in Python over the ``tags`` column only (portable across databases)."""
    counter: Counter = Counter()
    for tags in _live().values_list("tags", flat=True).iterator(chunk_size=5000):
        if isinstance(tags, list):
            counter.update({t for t in tags if isinstance(t, str) and t})
    ranked = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[: max(0, limit)]
    return [{"tag": tag, "count": count} for tag, count in ranked]


def lora_folders() -> list[dict]:
    """The folder tree per root: ``[{root: LibraryRoot, folders: [{path, count}]}]``.

    ``count`` is the number of present LoRAs in the folder and its sub-folders; every parent
    folder of a folder with LoRAs is listed ('' is the root itself).
    """
    from .models import LibraryRoot

    out = []
    per_root: dict[int, Counter] = {}
    for root_id, folder, n in (_live().values("root_id", "folder").annotate(n=Count("id"))
                               .values_list("root_id", "folder", "n")):
        counts = per_root.setdefault(root_id, Counter())
        parts = folder.split("/") if folder else []
        for i in range(len(parts) + 1):
            counts["/".join(parts[:i])] += n
    for root in LibraryRoot.objects.order_by("path"):
        counts = per_root.get(root.pk, Counter())
        out.append({"root": root, "folders": [{"path": p, "count": counts[p]}
                                              for p in sorted(counts)]})
    return out


def lora_base_models() -> list[dict]:
    """Present LoRAs per base model: ``[{base_model, count}]`` ('' = unknown), most first."""
    return [{"base_model": row["base_model"], "count": row["n"]}
            for row in _live().values("base_model").annotate(n=Count("id"))
            .order_by("-n", "base_model")]
