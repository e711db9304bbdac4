"""Pages of the LoRA library (/loras/, /loras/<id>/, /loras/trash/, /loras/duplicates/,
/loras/downloads/): server-rendered first page, JS for the rest (what each page shows:
docs/library-pages.md).

The list page renders its first page from the database with the same GET parameters as
``GET /api/loras/`` (search, base_model, folder, tags, favorite, ordering, page) through
``loras.selectors.lora_list``; ``static/loras.js`` loads later pages and runs the actions
through the API.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, render

from core.exceptions import ApplicationError

from .favorites import favorites_annotate, lora_is_favorite
from .models import LibraryRoot, LoraModel, TrashEntry
from .paths import is_outside_root
from .permissions import can_manage_library
from .selectors import LIST_DEFERRED, lora_base_models, lora_duplicates, lora_queryset
from .services.downloads import download_list

PAGE_SIZE = 50
# Civitai browsing levels: 1 PG, 2 PG-13, 4 R, 8 X, 16 XXX (docs/protocols.md#civitai-nsfw-levels)
NSFW_BLUR_LEVEL = 4
ORDERINGS = [
    ("name", "Name A→Z"),
    ("-name", "Name Z→A"),
    ("-created_at", "Newest first"),
    ("created_at", "Oldest first"),
    ("-size", "Largest first"),
    ("size", "Smallest first"),
    ("-usage_count", "Most used"),
    ("usage_count", "Least used"),
]
_ORDERING_KEYS = {key for key, _ in ORDERINGS}


def page_filters(params) -> dict:
    """The ``GET /api/loras/`` parameters of a list-page request (``params``: a QueryDict),
    cleaned for the toolbar and for :func:`loras.selectors.lora_list`.

    Returns the toolbar values ``{"search", "base_model", "folder", "tags" (list of str),
    "favorite" (bool), "ordering"}`` plus ``"query"``, the QueryDict to filter with: an unknown
    ``ordering`` falls back to ``name``, ``tags`` must all match (``tags_mode=all``) unless
    the request says otherwise, and empty values are dropped."""
    query = params.copy()
    query.pop("page", None)
    for key in list(query.keys()):
        if not any(v.strip() for v in query.getlist(key)):
            del query[key]
    if query.get("ordering") not in _ORDERING_KEYS:
        query["ordering"] = "name"
    # django-filter's BooleanFilter takes true/false
    for key in ("favorite", "has_civitai", "update_available"):
        if key in query:
            query[key] = "true" if query[key].lower() in {"1", "true", "yes", "on"} else "false"
    if query.get("tags") and not query.get("tags_mode"):
        query["tags_mode"] = "all"
    return {
        "search": (query.get("search") or "").strip(),
        "base_model": query.get("base_model") or "",
        "folder": query.get("folder") or "",
        "tags": [t.strip() for t in (query.get("tags") or "").split(",") if t.strip()],
        "favorite": query.get("favorite") == "true",
        "ordering": query["ordering"],
        "query": query,
    }


def root_labels(roots) -> dict[int, str]:
    """``{root id: label}`` that tells roots apart: the root's name, and where two roots share
    a name (two folders both called ``loras``), the name with its parent folder
    (``loras (ssd/models)``), growing the path tail until the labels differ."""
    roots = list(roots)
    labels = {r.pk: str(r) for r in roots}
    by_label: dict[str, list] = {}
    for r in roots:
        by_label.setdefault(labels[r.pk], []).append(r)
    for same in by_label.values():
        if len(same) < 2:
            continue
        parts = {r.pk: [p for p in os.path.normpath(r.path).split(os.sep) if p][:-1]
                 for r in same}
        for depth in range(1, max(len(p) for p in parts.values()) + 1):
            tails = {pk: "/".join(p[-depth:]) for pk, p in parts.items()}
            if len(set(tails.values())) == len(tails):
                break
        for r in same:
            labels[r.pk] = f"{labels[r.pk]} ({tails[r.pk] or '/'})"
    return labels


def duplicate_hashes(loras) -> set[str]:
    """The SHA-256 digests among ``loras`` (rows of one page) that another present LoRA shares:
    one grouped query over those digests only."""
    hashes = {lo.sha256 for lo in loras if lo.sha256}
    if not hashes:
        return set()
    return set(LoraModel.objects.filter(status=LoraModel.Status.PRESENT, sha256__in=hashes)
               .values("sha256").annotate(n=Count("id")).filter(n__gt=1)
               .values_list("sha256", flat=True))


def _list(*, params, user):
    """:func:`loras.selectors.lora_list` with the user's own favourites (``is_favorite``).

    Raises:
        ApplicationError: 400 ``invalid`` for bad filter values."""
    from .filters import LoraFilter

    qs = favorites_annotate(lora_queryset().defer(*LIST_DEFERRED), user)
    fs = LoraFilter(params, queryset=qs)
    if not fs.is_valid():
        errors = {k: [str(m) for m in v] for k, v in fs.errors.items()}
        field, messages = next(iter(errors.items()))
        raise ApplicationError("invalid", f"{field}: {messages[0]}", fields=errors)
    return fs.qs


@login_required
def lora_list_page(request):
    """The library grid: toolbar (search, filters, sort, scan), cards, bulk actions.

    The first page (50) comes from :func:`loras.selectors.lora_list` with the request's GET
    parameters, so it shows what ``GET /api/loras/`` would; a bad filter value is shown as an
    error above an empty grid instead of failing the page."""
    filters = page_filters(request.GET)
    error = None
    try:
        rows = _list(params=filters["query"], user=request.user)
        page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    except ApplicationError as exc:
        error = exc.message
        page = Paginator(LoraModel.objects.none(), PAGE_SIZE).get_page(1)
    live = LoraModel.objects.filter(status=LoraModel.Status.PRESENT)
    folders = (live.exclude(folder="").values_list("folder", flat=True)
               .distinct().order_by("folder"))
    roots = list(LibraryRoot.objects.annotate(lora_count=Count(
        "loras", filter=~Q(loras__status=LoraModel.Status.TRASHED))))
    labels = root_labels(roots)
    for r in roots:
        r.label = labels[r.pk]
    dupes = duplicate_hashes(page.object_list)
    for lora in page.object_list:
        lora.is_duplicate = lora.sha256 in dupes
        lora.root_label = labels.get(lora.root_id, "")
        weight = lora.preferred_weight if lora.preferred_weight is not None else 1
        lora.use_weight = f"{weight:g}"
    return render(request, "loras/list.html", {
        "page": page,
        "filters": filters,
        "error": error,
        "tags_text": ", ".join(filters["tags"]),
        "base_models": [b for b in lora_base_models() if b["base_model"]],
        "folders": folders,
        "orderings": ORDERINGS,
        "query": filters["query"].urlencode(),
        "library_empty": not LoraModel.objects.exclude(status=LoraModel.Status.TRASHED).exists(),
        "lora_roots": settings.LORA_ROOTS,
        "roots": roots,
        "many_roots": len(roots) > 1,
        "nsfw_blur_level": NSFW_BLUR_LEVEL,
        "can_manage": can_manage_library(request.user),
        "update_available": filters["query"].get("update_available") == "true",
    })


@login_required
def lora_detail_page(request, pk):
    """One LoRA: preview, file, hashes, trigger words, editors, Civitai, header metadata."""
    lora = get_object_or_404(LoraModel.objects.select_related("root"), pk=pk)
    header = sorted((lora.header_metadata or {}).items())
    weight = lora.preferred_weight if lora.preferred_weight is not None else 1
    civitai = lora.civitai if isinstance(lora.civitai, dict) else {}
    model = civitai.get("model") if isinstance(civitai.get("model"), dict) else {}
    creator = civitai.get("creator") or model.get("creator") or {}
    return render(request, "loras/detail.html", {
        # Civitai's model-version JSON: "name" (version), "model": {"name"}, and the creator as
        # in loras/services/organize.py ({author}) (docs/protocols.md#civitai)
        "civitai_model_name": model.get("name") or "",
        "civitai_creator": (creator.get("username") or "") if isinstance(creator, dict) else "",
        "lora": lora,
        "size_mb": lora.size / (1024 * 1024),
        "header": header,
        "use_weight": f"{weight:g}",
        "nsfw_blur_level": NSFW_BLUR_LEVEL,
        # a symlinked folder leads outside the root: listed, but never renamed/moved/deleted
        "outside_root": is_outside_root(lora.root.path, lora.abs_path),
        "root_label": root_labels(LibraryRoot.objects.all()).get(lora.root_id, str(lora.root)),
        "can_manage": can_manage_library(request.user),
        "is_favorite": lora_is_favorite(lora=lora, user=request.user),
    })


@login_required
def lora_trash_page(request):
    """The trash: every trashed LoRA still there (newest first) with where it came from; library
    managers restore them (``POST /api/loras/<id>/restore/``). There is no purge and no
    retention period yet: trashed files stay in ``LORA_TRASH_DIR`` until removed by hand."""
    entries = list(TrashEntry.objects.filter(restored_at__isnull=True,
                                             lora__status=LoraModel.Status.TRASHED)
                   .select_related("lora", "root").order_by("-deleted_at"))
    labels = root_labels(LibraryRoot.objects.all())
    for e in entries:
        e.root_label = labels.get(e.root_id, "")
    return render(request, "loras/trash.html", {
        "entries": entries,
        "trash_dir": settings.LORA_TRASH_DIR,
        "retention_days": getattr(settings, "TRASH_RETENTION_DAYS", None),
        "can_manage": can_manage_library(request.user),
    })


@login_required
def lora_duplicates_page(request):
    """Groups of present LoRAs with the same SHA-256 (:func:`loras.selectors.lora_duplicates`):
    each file's root, path and size; the first of a group (oldest row) is proposed to keep,
    the others can go to the trash (``DELETE /api/loras/<id>/``)."""
    groups = lora_duplicates()
    labels = root_labels(LibraryRoot.objects.all())
    for g in groups:
        g["loras"].sort(key=lambda lo: (lo.created_at, lo.pk))
        for lo in g["loras"]:
            lo.root_label = labels.get(lo.root_id, "")
        g["wasted"] = sum(lo.size for lo in g["loras"][1:])  # bytes
    return render(request, "loras/duplicates.html", {
        "groups": groups,
        "can_manage": can_manage_library(request.user),
    })


@login_required
def lora_downloads_page(request):
    """The signed-in user's downloads (``GET /api/downloads/`` lists the same), newest first;
    ``static/loras_downloads.js`` polls the API for progress and cancels through
    ``POST /api/jobs/<id>/cancel/``."""
    rows = download_list(user=request.user).order_by("-created_at")[:100]
    return render(request, "loras/downloads.html", {
        "downloads": rows,
        "can_manage": can_manage_library(request.user),
    })
