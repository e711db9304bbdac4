"""Reads of the LoRA library."""

from __future__ import annotations

from collections import Counter

from django.db.models import Count, Q, QuerySet

from .models import LoraModel

HASH_PREFIX_MIN = 10  # Civitai AutoV2 is the first 10 hex of the file's SHA-256
_HEX = frozenset("0123456789abcdefABCDEF")


def _stem(file_name: str) -> str:
    return file_name.rsplit(".", 1)[0] if "." in file_name else file_name


def lora_resolve(*, ref) -> LoraModel | None:
    """The present LoRA named by ``ref`` (a ``<lora:REF:...>`` name or a request's ``lora``), or
    ``None``. Tried in this order, the first step that matches wins
    (docs/prompt-syntax.md#how-a-lora-name-is-resolved):

    1. the file stem (file name without extension) or the library ``name``, exactly, as A1111
       looks a LoRA up by its file stem;
    2. the ``ss_output_name`` of the file's header (A1111's alias), exactly;
    3. the id (a digit string or int);
    4. 1 and 2 ignoring case;
    5. a hex prefix of at least 10 characters of the file's SHA-256 (AutoV2 is 10) or of its
       AutoV3 (A1111's ``Lora hashes:`` show its first 12).

    Several LoRAs matching in one step (the same stem in two folders, an alias shared by two
    files): the first by (root path, relative path), a stable order; A1111 takes whichever its
    folder walk saw last and refuses a shared alias.
    """
    ref = str(ref).strip()
    if not ref:
        return None
    qs = (LoraModel.objects.filter(status=LoraModel.Status.PRESENT).select_related("root")
          .order_by("root__path", "relative_path", "id"))
    stem_q = Q(name=ref) | Q(file_name__startswith=f"{ref}.")
    for found in qs.filter(stem_q):
        if found.name == ref or _stem(found.file_name) == ref:
            return found
    found = qs.filter(header_metadata__ss_output_name=ref).first()
    if found is not None:
        return found
    if ref.isdigit():
        found = qs.filter(pk=int(ref)).first()
        if found is not None:
            return found
    folded = ref.casefold()
    for found in qs.filter(Q(name__iexact=ref) | Q(file_name__istartswith=f"{ref}.")):
        if found.name.casefold() == folded or _stem(found.file_name).casefold() == folded:
            return found
    for found in qs.filter(header_metadata__ss_output_name__iexact=ref):
        return found
    if len(ref) >= HASH_PREFIX_MIN and set(ref) <= _HEX:
        prefix = ref.lower()
        return qs.filter(Q(sha256__startswith=prefix) | Q(autov3__startswith=prefix)).first()
    return None


def lora_prompt_name(lora: LoraModel, ref="") -> str:
    """The name to write in ``<lora:NAME:W>`` so that A1111 finds ``lora``: ``ref`` when it is
    the file stem or the ``ss_output_name`` alias as written, else the file stem."""
    ref = str(ref).strip()
    alias = (lora.header_metadata or {}).get("ss_output_name") if isinstance(
        lora.header_metadata, dict) else None
    if ref and ref in (_stem(lora.file_name), alias):
        return ref
    return _stem(lora.file_name) or lora.name


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
