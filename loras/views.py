"""Pages of the LoRA library (/loras/, /loras/<id>/): server-rendered first page, JS for the rest.

The list page renders its first page from the database with the same GET parameters as
``GET /api/loras/`` (search, base_model, folder, tags, favorite, ordering, page) through
``loras.selectors.lora_list``; ``static/loras.js`` loads later pages and runs the actions
through the API.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, render

from core.exceptions import ApplicationError

from .favorites import favorites_annotate, lora_is_favorite
from .models import LoraModel
from .paths import is_outside_root
from .permissions import can_manage_library
from .selectors import LIST_DEFERRED, lora_base_models, lora_queryset

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
    return render(request, "loras/detail.html", {
        "lora": lora,
        "size_mb": lora.size / (1024 * 1024),
        "header": header,
        "use_weight": f"{weight:g}",
        "nsfw_blur_level": NSFW_BLUR_LEVEL,
        # a symlinked folder leads outside the root: listed, but never renamed/moved/deleted
        "outside_root": is_outside_root(lora.root.path, lora.abs_path),
        "can_manage": can_manage_library(request.user),
        "is_favorite": lora_is_favorite(lora=lora, user=request.user),
    })
