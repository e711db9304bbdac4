"""Reads the server-rendered pages need beyond ``images.selectors``: model profiles with their
provider's capabilities, the user's model names, and usage aggregates shaped for bar charts."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import Counter
from decimal import Decimal

from django.core.exceptions import FieldDoesNotExist
from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from providers import registry
from providers.models import ModelProfile

from .models import GenerationRequest, Image, UsageLog
from .selectors import image_lora_refs

logger = logging.getLogger(__name__)


def profile_choices() -> list[dict]:
    """Enabled model profiles, default first, each as ``{"profile": ModelProfile,
    "capabilities": dict | None, "capabilities_json": str, "unavailable": str}``.

    ``capabilities`` is the provider's ``Capabilities.as_dict()`` (sizes in pixels); ``None``
    with ``unavailable`` holding the reason when the provider is not configured or cannot be
    instantiated (e.g. a missing API key) — the page still lists the profile.
    """
    out = []
    for profile in ModelProfile.objects.filter(enabled=True):
        caps, reason = None, ""
        try:
            caps = registry.get(profile.provider).capabilities.as_dict()
        except Exception as exc:  # noqa: BLE001 — any provider error only greys the profile out
            reason = str(exc) or exc.__class__.__name__
            logger.info("profile %s: provider %s unavailable: %s", profile.slug,
                        profile.provider, reason)
        out.append({"profile": profile, "capabilities": caps,
                    "capabilities_json": json.dumps(caps or {}), "unavailable": reason})
    return out


def image_model_names(*, user) -> list[str]:
    """Distinct model names of ``user``'s images (for the gallery's model filter), sorted."""
    # DISTINCT in the database: a gallery of many thousand images sends a handful of names.
    return list(Image.objects.filter(user=user).order_by("model_name")
                .values_list("model_name", flat=True).distinct())


def image_is_owner(*, image: Image, user) -> bool:
    """Whether ``user`` owns ``image`` (and may edit, upscale, narrate, delete it)."""
    return image.user_id == getattr(user, "pk", None)


#: Request fields of a txt2img passed on by name (the names of POST /api/generate/ and of the
#: generate page's query string); the request column is named after the key unless mapped.
TXT2IMG_FIELDS = ("sampler", "scheduler", "clip_skip", "vae", "enable_hr", "hr_scale",
                  "hr_upscaler", "hr_second_pass_steps", "denoising_strength")
_HIRES_FIELDS = ("enable_hr", "hr_scale", "hr_upscaler", "hr_second_pass_steps",
                 "denoising_strength")
_COLUMN = {"denoising_strength": "hr_denoising_strength"}


def txt2img_again_params(*, image: Image, request: GenerationRequest | None) -> dict:
    """The ``POST /api/generate/`` body that makes ``image`` again: its prompt (LoRA tags as
    typed), negative prompt, model, size asked for (before a hires fix), steps, CFG scale,
    seed, ``n`` 1, LoRAs (``[{"lora": "<id>", "weight"}]``) and — when its request recorded
    them — sampler, schedule type, clip skip, VAE and, with the hires fix on, its fields."""
    params = {"prompt": image.prompt, "negative_prompt": image.negative_prompt,
              "width": request.width if request else image.width,
              "height": request.height if request else image.height,
              "steps": image.steps, "guidance_scale": image.guidance_scale,
              "seed": image.seed, "n": 1, "loras": image_lora_refs(image)}
    if request is None:
        return params
    params["model"] = request.profile.slug
    for key in TXT2IMG_FIELDS:
        if key in _HIRES_FIELDS and not getattr(request, "enable_hr", False):
            continue
        value = getattr(request, _COLUMN.get(key, key), None)
        if value not in (None, "") and not (key == "clip_skip" and value == 1):
            params[key] = value
    return params


def image_generate_again_url(*, image: Image) -> str:
    """The generate page (``/``) prefilled to make ``image`` again: the query string has the
    :func:`txt2img_again_params` by name, LoRAs as repeated ``lora=<name>:<weight>``,
    booleans as ``1``. For an edit or upscale it prefills the txt2img of its prompt."""
    from urllib.parse import urlencode

    from django.urls import reverse

    request = image.request if image.request_id else None
    if request is not None and request.kind != "txt2img":
        request = None  # an edit's strength/steps are not a txt2img's
    params = txt2img_again_params(image=image, request=request)
    names = {x.get("lora_id"): x.get("name") for x in image.loras or [] if isinstance(x, dict)}
    query = []
    for key, value in params.items():
        if key in ("loras", "n") or value in (None, ""):
            continue
        if isinstance(value, bool):
            value = "1" if value else "0"
        query.append((key, value))
    for ref in params["loras"]:
        name = names.get(int(ref["lora"])) or ref["lora"]
        query.append(("lora", f"{name}:{ref['weight']:g}"))
    return f"{reverse('generate')}?{urlencode(query)}"


def _has_field(model, name: str) -> bool:
    try:
        model._meta.get_field(name)
        return True
    except FieldDoesNotExist:
        return False


def _lora_names(entry) -> list[str]:
    """LoRA names from a usage log's or request's ``loras`` JSON (strings or dicts)."""
    names = []
    for item in entry or []:
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, dict) and (item.get("name") or item.get("lora")):
            names.append(str(item.get("name") or item.get("lora")))
    return names


def usage_summary(*, user, days: int = 30) -> dict:
    """Usage of ``user`` (every user when ``None``) over the last ``days`` days.

    Returns ``{"totals": {"generations", "images", "seconds", "cost" (USD, Decimal)},
    "per_day" | "per_provider" | "per_model" | "per_lora": [(label, count)], "since": date,
    "has_cost": bool}``; counts are generations (usage log rows), per day oldest first with
    empty days included, the others largest first. LoRA counts come from the usage log's
    ``lora_names`` field when it has one, else from the generation request's LoRAs.
    """
    since = timezone.localdate() - dt.timedelta(days=days - 1)
    qs = UsageLog.objects.filter(created_at__date__gte=since)
    if user is not None:
        qs = qs.filter(user=user)

    has_cost = _has_field(UsageLog, "estimated_cost")
    agg = qs.aggregate(generations=Count("id"), images=Sum("image_count"),
                       seconds=Sum("duration_seconds"),
                       **({"cost": Sum("estimated_cost")} if has_cost else {}))
    totals = {"generations": agg["generations"] or 0, "images": agg["images"] or 0,
              "seconds": float(agg["seconds"] or 0.0),
              "cost": Decimal(str(agg.get("cost") or 0))}

    by_day = dict(qs.annotate(day=TruncDate("created_at")).values_list("day")
                  .annotate(n=Count("id")).values_list("day", "n"))
    per_day = []
    for i in range(days):
        day = since + dt.timedelta(days=i)
        per_day.append((day.strftime("%m-%d"), by_day.get(day, 0)))

    def grouped(field):
        rows = qs.values(field).annotate(n=Count("id")).order_by("-n", field)
        return [(r[field] or "—", r["n"]) for r in rows]

    loras: Counter = Counter()
    lora_field = next((f for f in ("lora_names", "loras") if _has_field(UsageLog, f)), None)
    if lora_field:
        for entry in qs.values_list(lora_field, flat=True):
            loras.update(set(_lora_names(entry)))
    else:
        for entry in qs.values_list("request__loras", flat=True):
            loras.update(set(_lora_names(entry)))

    return {"totals": totals, "per_day": per_day, "per_provider": grouped("provider"),
            "per_model": grouped("model_name"),
            "per_lora": sorted(loras.items(), key=lambda kv: (-kv[1], kv[0])),
            "since": since, "has_cost": has_cost}


#: Average advance of a 12 px UI-font character in SVG units (measured: 6.6-7 for Latin text).
CHART_CHAR_WIDTH = 7.0


def bar_chart(rows, *, limit: int = 31, width: int = 560, bar: int = 18, gap: int = 6,
              label_width: int | None = None) -> dict:
    """Geometry of a horizontal SVG bar chart for ``rows`` ``[(label, value)]`` (first
    ``limit`` rows): ``{"width", "height", "bars": [{"label", "full_label", "value", "y", "w",
    "text_y", "value_x"}], "max", "empty", "label_width"}``; all lengths in SVG user units
    (pixels at 1:1).

    ``label_width`` (default: fitted to the longest label, 80..240) is the room left of the
    bars; a label longer than fits is cut with "…" (``full_label`` keeps it for the tooltip), so
    no label runs off the chart's left edge.
    """
    rows = list(rows)[:limit]
    peak = max((v for _, v in rows), default=0)
    if label_width is None:
        longest = max((len(str(label)) for label, _ in rows), default=0)
        label_width = int(min(240, max(80, longest * CHART_CHAR_WIDTH + 12)))
    fits = max(4, int((label_width - 12) // CHART_CHAR_WIDTH))
    plot = width - label_width - 50
    bars = []
    for i, (label, value) in enumerate(rows):
        y = i * (bar + gap)
        w = round(plot * value / peak, 1) if peak else 0
        text = str(label)
        short = text if len(text) <= fits else text[:fits - 1].rstrip() + "…"
        bars.append({"label": short, "full_label": text, "value": value,
                     "y": y, "w": max(w, 1 if value else 0), "text_y": y + bar * 0.72,
                     "value_x": label_width + w + 6})
    return {"width": width, "height": max(len(rows) * (bar + gap) - gap, bar), "bars": bars,
            "bar": bar, "label_width": label_width, "max": peak, "empty": peak == 0}


def column_chart(rows, *, width: int = 560, height: int = 180, pad_bottom: int = 22,
                 pad_top: int = 16) -> dict:
    """Geometry of a vertical SVG column chart for ``rows`` ``[(label, value)]`` in order (a
    time series): ``{"width", "height", "columns": [{"label", "value", "x", "y", "w", "h"}],
    "ticks": [{"x", "label"}], "max", "empty", "base_y"}``; lengths in SVG user units."""
    rows = list(rows)
    peak = max((v for _, v in rows), default=0)
    n = max(len(rows), 1)
    step = width / n
    plot = height - pad_bottom - pad_top
    columns = []
    for i, (label, value) in enumerate(rows):
        h = round(plot * value / peak, 1) if peak else 0
        columns.append({"label": str(label), "value": value, "x": round(i * step + step * 0.1, 2),
                        "w": round(max(step * 0.8, 0.8), 2), "y": round(pad_top + plot - h, 1),
                        "h": h, "label_x": round(i * step + step / 2, 1)})
    every = max(1, n // 6)
    ticks = [{"x": c["label_x"] if i else 0, "label": c["label"],
              "anchor": "middle" if i else "start"}
             for i, c in enumerate(columns) if i % every == 0]
    return {"width": width, "height": height, "columns": columns, "ticks": ticks,
            "max": peak, "empty": peak == 0, "base_y": height - pad_bottom,
            "label_y": height - 6, "peak_y": pad_top - 4}
