"""Server-rendered pages: generate (/), gallery, image detail, projects, usage.

The pages render a shell (plus what is cheap to compute server-side: model profiles with their
provider's capabilities, usage charts) and small vanilla scripts in ``static/`` do the rest over
the JSON API. Every script shows a clear message when an endpoint it uses answers 404/5xx.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from loras.compat import PIPELINE_FAMILIES, base_model_family
from loras.models import LoraModel
from providers.hires import HIRES_UPSCALERS
from providers.models import ModelProfile

from .selectors import image_get, image_list
from .selectors_pages import (
    bar_chart,
    column_chart,
    image_is_owner,
    image_model_names,
    profile_choices,
    usage_summary,
)

#: Aspect-ratio presets of the generate page (width:height at the profile's base area).
ASPECT_RATIOS = ("1:1", "3:2", "2:3", "16:9", "9:16")


def _lora_fit_table(profiles: list[dict]) -> dict:
    """What the LoRA picker needs to list fitting LoRAs first (the server checks again before
    queuing, ``loras.compat.loras_check``): ``{"lora_families": {base_model: family},
    "profile_families": {slug: [family, ...]}}`` with ``loras.compat``'s family names; a base
    model of unknown family maps to ``""`` (it fits anything)."""
    bases = (LoraModel.objects.exclude(base_model="")
             .values_list("base_model", flat=True).distinct())
    out = {"lora_families": {b: base_model_family(b) for b in bases}, "profile_families": {}}
    for choice in profiles:
        p = choice["profile"]
        narrowed = base_model_family((p.options or {}).get("base_model", ""))
        out["profile_families"][p.slug] = (
            [narrowed] if narrowed else list(PIPELINE_FAMILIES.get(p.pipeline_type, ())))
    return out


@login_required
def generate_page(request):
    """The generate form: txt2img and img2img/inpaint tabs, style, LoRA picker, model profile
    with capabilities, sampler, schedule type and VAE (lists from ``GET /api/samplers/``,
    ``/api/schedulers/`` and ``/api/vaes/``), clip skip, hires fix (the latent and pixel
    upscalers of ``providers.hires``), aspect presets, PNG Info, live progress, my running
    jobs. Prefilled from the query string or the last settings by ``static/generate*.js``."""
    recent = image_list(user=request.user)[:12]
    loras = LoraModel.objects.all()[:500]
    profiles = profile_choices()
    return render(request, "images/generate.html", {
        "profiles": profiles, "recent": recent, "loras": loras,
        "aspect_ratios": ASPECT_RATIOS, "hr_upscalers": HIRES_UPSCALERS,
        "lora_fit": _lora_fit_table(profiles),
    })


#: The gallery's sort choices: ``?ordering=`` of the image API (a unique last key, so pages
#: of an infinite scroll never overlap) and their labels.
GALLERY_ORDERINGS = (
    ("-created_at,-id", _("Newest first")),
    ("created_at,id", _("Oldest first")),
    ("-is_favorite,-created_at,-id", _("Favourites first")),
    ("model_name,-created_at,-id", _("Model A–Z")),
    ("seed,id", _("Seed")),
)
GALLERY_FILTERS = ("q", "project", "tag", "model", "lora", "favorite", "created_after",
                   "created_before", "ordering")


@login_required
def gallery_page(request):
    """Grid with infinite scroll over ``/api/images/`` (mine) or ``/api/gallery/`` (public):
    search, filters and sort kept in the address bar (``GALLERY_FILTERS``, the API's names),
    bulk actions (``/api/images/bulk/``, ``/api/images/zip/``) and a lightbox
    (``static/gallery*.js``). ``profile_slugs`` maps model profile names (``Image.model_name``)
    to slugs for the lightbox's "send to generate" link."""
    initial = {k: request.GET.get(k, "") for k in GALLERY_FILTERS}
    if initial["ordering"] not in dict(GALLERY_ORDERINGS):
        initial["ordering"] = GALLERY_ORDERINGS[0][0]
    return render(request, "images/gallery.html", {
        "model_names": image_model_names(user=request.user),
        "lora_names": LoraModel.objects.values_list("name", flat=True)[:500],
        "initial": initial,
        "orderings": GALLERY_ORDERINGS,
        "profile_slugs": dict(ModelProfile.objects.filter(enabled=True)
                              .values_list("name", "slug")),
        "scope": "public" if request.GET.get("scope") == "public" else "mine",
    })


@login_required
def image_detail_page(request, pk):
    """One image with its parameters and, for its owner, the edit/upscale/narrate/... actions.
    Others' private images are 404."""
    image = image_get(user=request.user, pk=pk)
    return render(request, "images/image_detail.html", {
        "image": image,
        "is_owner": image_is_owner(image=image, user=request.user),
        "profiles": profile_choices(),
        "audio_url": _file_url(getattr(image, "audio", None)),
        "tags": _image_tags(image),
    })


@login_required
def projects_page(request):
    """My projects (list + create) over ``/api/image-projects/``."""
    return render(request, "images/projects.html")


@login_required
def project_detail_page(request, pk):
    """One project's images (add/remove) over ``/api/image-projects/<pk>/`` and
    ``/api/projects/<pk>/gallery/``; a missing or foreign project shows the API's 404."""
    return render(request, "images/project_detail.html", {"project_id": pk})


@login_required
def usage_page(request):
    """Usage charts (per day, provider, model, LoRA) as inline SVG, totals and estimated cost.
    Staff may add ``?all=1`` to see every user's usage."""
    everyone = bool(request.user.is_staff and request.GET.get("all"))
    days = _int(request.GET.get("days"), default=30, low=1, high=365)
    summary = usage_summary(user=None if everyone else request.user, days=days)
    charts = [
        (_("Generations per day"), "day", column_chart(summary["per_day"])),
        (_("Per provider"), "provider", bar_chart(summary["per_provider"])),
        (_("Per model"), "model", bar_chart(summary["per_model"])),
        (_("Per LoRA"), "lora", bar_chart(summary["per_lora"])),
    ]
    return render(request, "images/usage.html", {
        "summary": summary, "charts": charts, "everyone": everyone, "days": days,
    })


def _int(raw, *, default: int, low: int, high: int) -> int:
    try:
        return max(low, min(high, int(raw)))
    except (TypeError, ValueError):
        return default


def _file_url(field) -> str | None:
    try:
        return field.url if field else None
    except ValueError:
        return None


def _image_tags(image) -> list[str]:
    tags = getattr(image, "tags", None)
    if tags is None or not hasattr(tags, "all"):
        return []
    return [t.name for t in tags.all()]
