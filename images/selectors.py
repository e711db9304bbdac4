"""Reads of requests and images. Others' private objects are 404."""

from django.db.models import Prefetch, Q
from django.shortcuts import get_object_or_404

from .models import GenerationRequest, Image


def image_list(*, user):
    """Images of ``user``, newest first."""
    return Image.objects.filter(user=user).select_related("request")


def image_get(*, user, pk) -> Image:
    """An image of ``user`` or a public one. Raises ``Http404`` otherwise."""
    qs = Image.objects.select_related("request__profile")
    visible = Q(is_public=True) | Q(user_id=getattr(user, "pk", None))
    return get_object_or_404(qs.filter(visible), pk=pk)


def generation_request_get(*, user, pk) -> GenerationRequest:
    """A generation request of ``user`` with its job and images. Raises ``Http404``."""
    return get_object_or_404(
        GenerationRequest.objects.select_related("job", "profile").prefetch_related("images"),
        pk=pk, user=user)


# ------------------------------------------------------------------ library (#6)

def _uid(user):
    return getattr(user, "pk", None) if getattr(user, "is_authenticated", False) else None


def _image_base():
    derived = Prefetch("derived", queryset=Image.objects.only(
        "id", "user_id", "is_public", "source_id").order_by("created_at", "id"))
    return (Image.objects.select_related("user", "project", "request", "source")
            .prefetch_related("tags", derived))


def image_visible_q(*, user) -> Q:
    """Images ``user`` may read: their own and public ones."""
    uid = _uid(user)
    return Q(is_public=True) | Q(user_id=uid) if uid else Q(is_public=True)


def image_own_list(*, user):
    """``user``'s images, newest first, with owner, project and tags loaded."""
    return _image_base().filter(user_id=_uid(user))


def image_gallery_list():
    """Public images of everyone, newest first."""
    return _image_base().filter(is_public=True)


def image_user_list(*, user, username: str | None):
    """Images of ``username``: all of them when ``user`` is that user, else the public ones.
    Without ``username``: ``user``'s own images."""
    if not username:
        return image_own_list(user=user)
    qs = _image_base().filter(user__username=username)
    if getattr(user, "username", None) == username and _uid(user):
        return qs
    return qs.filter(is_public=True)


def image_get_for_owner(*, user, pk) -> Image:
    """An image ``user`` may read (own or public); ``Http404`` otherwise."""
    return get_object_or_404(_image_base().filter(image_visible_q(user=user)), pk=pk)


# ------------------------------------------------------------------ lineage (issue 15)

#: What an image's operation is called on pages (the API gives the key as ``operation``).
OPERATION_LABELS = {"txt2img": "txt2img", "hires": "txt2img + hires fix", "img2img": "img2img",
                    "inpaint": "inpaint", "upscale": "upscale"}


def image_lora_refs(image: Image | None) -> list[dict]:
    """The LoRAs recorded on ``image`` as request references ``[{"lora": "<id>", "weight",
    ("te_weight")}]`` (``[]`` for None or an image without LoRAs)."""
    refs = []
    for item in (image.loras if image is not None else None) or []:
        if not isinstance(item, dict) or item.get("lora_id") is None:
            continue
        ref = {"lora": str(item["lora_id"]), "weight": float(item.get("weight", 1.0))}
        if item.get("te_weight") is not None:
            ref["te_weight"] = float(item["te_weight"])
        refs.append(ref)
    return refs


def image_operation(image: Image) -> str:
    """The operation that made ``image``: ``"txt2img"``, ``"hires"`` (a txt2img with the
    hires fix), ``"img2img"``, ``"inpaint"`` or ``"upscale"`` (from ``Image.kind`` and the
    request's ``enable_hr``; an unknown kind is returned as stored)."""
    kind = image.kind or "txt2img"
    if kind == "txt2img" and image.request_id and getattr(image.request, "enable_hr", False):
        return "hires"
    return kind


def image_operation_label(image: Image) -> str:
    """:func:`image_operation` as shown on pages, e.g. ``"txt2img + hires fix"``."""
    op = image_operation(image)
    return OPERATION_LABELS.get(op, op)


def _readable(image: Image | None, uid) -> bool:
    return image is not None and (image.is_public or (uid is not None and image.user_id == uid))


def image_source_visible(*, image: Image, user) -> Image | None:
    """The image ``image`` was edited or upscaled from, when ``user`` may read it (own or
    public), else None."""
    source = image.source if image.source_id else None
    return source if _readable(source, _uid(user)) else None


def image_derived_visible(*, image: Image, user) -> list[Image]:
    """Images edited or upscaled from ``image`` that ``user`` may read, oldest first (uses
    the ``derived`` prefetch of :func:`_image_base` when there is one)."""
    uid = _uid(user)
    return [d for d in image.derived.all() if _readable(d, uid)]


def image_lineage(*, image: Image, user) -> dict:
    """Lineage of ``image`` for its detail page: ``{"operation": key, "operation_label":
    str, "source": Image | None (readable by ``user``), "source_state": "shown" | "private"
    (a source ``user`` may not read) | "upload" (an edit or upscale of an uploaded image, or
    of one deleted since) | "" (a txt2img has none), "derived": [Image] (readable, oldest
    first, each with ``operation_label`` set), "steps_run": int | None (the denoising steps an
    img2img/inpaint ran)}``."""
    source = image_source_visible(image=image, user=user)
    derived = list(Image.objects.filter(image_visible_q(user=user), source=image)
                   .select_related("request").order_by("created_at", "id"))
    for item in derived:
        item.operation_label = image_operation_label(item)
    if source is not None:
        state = "shown"
    elif image.source_id is not None:
        state = "private"
    else:
        state = "upload" if image.kind in ("img2img", "inpaint", "upscale") else ""
    steps_run = None
    request = image.request if image.request_id else None
    if image.kind in ("img2img", "inpaint") and request is not None and request.strength:
        # diffusers img2img/inpaint run int(steps * strength) steps (images.services.edit)
        steps_run = max(1, int(request.steps * request.strength))
    return {"operation": image_operation(image), "operation_label": image_operation_label(image),
            "source": source, "source_state": state, "derived": derived, "steps_run": steps_run}


def project_list(*, user):
    """Projects visible to ``user``: own and public, with ``image_count``: the project's images
    ``user`` may read (own or public; a public project of someone else never counts its
    private images)."""
    from django.db.models import Count

    from .models import Project

    uid = _uid(user)
    visible = Q(is_public=True) | Q(owner_id=uid) if uid else Q(is_public=True)
    readable = Q(images__is_public=True) | Q(images__user_id=uid) if uid else Q(
        images__is_public=True)
    return (Project.objects.filter(visible).select_related("owner", "cover")
            .annotate(image_count=Count("images", filter=readable, distinct=True))
            .order_by("-updated_at", "-id"))


def project_get(*, user, pk):
    return get_object_or_404(project_list(user=user), pk=pk)


def project_gallery(*, user, project):
    """Images of ``project``: all for its owner, the public ones for others."""
    qs = _image_base().filter(project=project)
    if project.owner_id == _uid(user):
        return qs
    return qs.filter(is_public=True)


def style_list(*, user):
    """Own and shared styles."""
    from .models import Style

    return Style.objects.filter(Q(owner_id=_uid(user)) | Q(is_shared=True)).select_related("owner")


def tag_counts(*, user, mine: bool = False):
    """Tags with ``count``: images visible to ``user`` (own + public; only own with ``mine``)
    carrying each tag, highest first; tags with no such image are left out."""
    from django.db.models import Count

    from .models import Tag

    uid = _uid(user)
    if mine:
        cond = Q(images__user_id=uid)
    else:
        cond = Q(images__is_public=True) | Q(images__user_id=uid) if uid else Q(
            images__is_public=True)
    return (Tag.objects.annotate(count=Count("images", filter=cond, distinct=True))
            .filter(count__gt=0).order_by("-count", "name"))


def prompt_helper_list(*, user):
    from .models import PromptHelper

    return PromptHelper.objects.filter(owner_id=_uid(user))


def prompt_helper_similar(*, user, query: str, k: int = 5
                          ) -> tuple[str, list[tuple[object, float]]]:
    """``user``'s prompt helpers closest to ``query`` by cosine similarity of the embeddings
    stored at save time (vectors of another embedder are recomputed once and stored); returns
    ``(embedder_name, [(helper, score), ...])`` best first, at most ``k``, score > 0."""
    from .embeddings import cosine, get_embedder
    from .models import PromptHelper

    embedder = get_embedder()
    helpers = prompt_helper_list(user=user)
    stale = list(helpers.exclude(embedder=embedder.name))
    if stale:  # made by another embedder (settings changed): recompute once and store
        for helper, vector in zip(stale, embedder.embed([h.prompt for h in stale]), strict=True):
            helper.embedding, helper.embedder = vector, embedder.name
        PromptHelper.objects.bulk_update(stale, ["embedding", "embedder"])
    qvec = embedder.embed([query])[0]
    scored = []
    for helper in helpers.all():
        score = cosine(qvec, helper.embedding)
        if score > 0:
            scored.append((helper, round(score, 4)))
    scored.sort(key=lambda pair: (-pair[1], pair[0].pk))
    return embedder.name, scored[:k]


def theme_list(*, user):
    """Own and shared themes."""
    from .models import ThemeHelper

    return (ThemeHelper.objects.filter(Q(owner_id=_uid(user)) | Q(is_shared=True))
            .select_related("owner"))


def theme_favorite_list(*, user):
    from .models import ThemeFavorite

    return ThemeFavorite.objects.filter(user_id=_uid(user)).select_related("theme", "theme__owner")


def usage_list(*, user):
    """Usage logs: all for staff, else the user's own."""
    from .models import UsageLog

    qs = UsageLog.objects.select_related("user")
    return qs if user.is_staff else qs.filter(user_id=user.pk)


def usage_summary(*, logs) -> dict:
    """Totals of ``logs`` (a UsageLog queryset): ``overall`` and lists ``by_day``,
    ``by_provider``, ``by_model``, ``by_lora``, ``by_user`` of
    ``{"key", "generations", "images", "cost" (USD string, 4 decimals), "seconds"}``."""
    from decimal import Decimal

    from django.db.models import Count, Sum
    from django.db.models.functions import TruncDate

    def counters(row) -> dict:
        return {"generations": row["generations"], "images": row["images"] or 0,
                "cost": f"{(row['cost'] or Decimal(0)):.4f}",
                "seconds": round(row["seconds"] or 0.0, 2)}

    aggs = dict(generations=Count("id"), images=Sum("image_count"),
                cost=Sum("estimated_cost"), seconds=Sum("duration_seconds"))

    def grouped(field):
        rows = logs.values(field).annotate(**aggs).order_by("-generations", field)
        return [{"key": r[field], **counters(r)} for r in rows]

    by_lora: dict[str, dict] = {}
    for log in logs.select_related(None).only("lora_names", "image_count", "estimated_cost",
                                              "duration_seconds"):
        for name in log.lora_names or []:
            row = by_lora.setdefault(name, {"generations": 0, "images": 0,
                                            "cost": Decimal(0), "seconds": 0.0})
            row["generations"] += 1
            row["images"] += log.image_count
            row["cost"] += log.estimated_cost
            row["seconds"] += log.duration_seconds
    return {
        "overall": counters(logs.aggregate(**aggs)),
        "by_day": [{"key": r["day"].isoformat(), **counters(r)} for r in
                   logs.annotate(day=TruncDate("created_at")).values("day")
                   .annotate(**aggs).order_by("day")],
        "by_provider": grouped("provider"),
        "by_model": grouped("model_name"),
        "by_lora": sorted(({"key": k, **counters(v)} for k, v in by_lora.items()),
                          key=lambda r: (-r["generations"], r["key"])),
        "by_user": [{"key": r["user__username"] or "(deleted)", **counters(r)} for r in
                    logs.values("user__username").annotate(**aggs).order_by("-generations")],
    }
