"""The filters of ``GET /api/loras/`` (django-filter).

Parameters: ``root`` (id), ``folder`` (exact) / ``folder_prefix`` (subtree), ``base_model``
(repeatable or comma list), ``tags`` (comma list) with ``tags_mode=any|all``, ``favorite``
(the requesting user's own), ``update_available`` (a newer Civitai version exists),
``has_civitai``, ``nsfw_max`` (NSFW level ≤), ``status`` (``present`` default, ``missing``,
``all``; trashed never), ``excluded`` (``false`` default, ``true``, ``all``), ``search``
(case-insensitive over name, file name, trigger words, tags, notes) and ``ordering``
(``name``, ``created_at``, ``size``, ``usage_count``, each with ``-``; default ``name``).
"""

from __future__ import annotations

import json

import django_filters
from django.db import connection
from django.db.models import F, Q
from django.db.models.functions import Lower

from .models import LoraModel

ORDERINGS = ("name", "created_at", "size", "usage_count")
DB_INT_MAX = 2**63 - 1  # the largest id PostgreSQL's bigint and SQLite's INTEGER hold


def _split(values) -> list[str]:
    out = []
    for value in values:
        out.extend(v.strip() for v in str(value).split(",") if v.strip())
    return out


def _json_list_has(field: str, item: str) -> Q:
    """Rows whose JSON list ``field`` holds the string ``item`` exactly.

    PostgreSQL: jsonb containment (``@>``, GIN-indexable). Others (SQLite): a
    case-insensitive match of the item's JSON text inside the stored JSON text."""
    if connection.vendor == "postgresql":
        return Q(**{f"{field}__contains": [item]})
    return Q(**{f"{field}__icontains": json.dumps(item)})


class LoraFilter(django_filters.FilterSet):
    """See the module docstring; defaults apply when a parameter is absent."""

    # Bounded: a huge number (e.g. -6e128) is a 400, not an integer overflow in the database.
    root = django_filters.NumberFilter(field_name="root_id", min_value=0, max_value=DB_INT_MAX)
    folder = django_filters.CharFilter(field_name="folder")
    folder_prefix = django_filters.CharFilter(method="filter_folder_prefix")
    base_model = django_filters.CharFilter(method="filter_base_model")
    tags = django_filters.CharFilter(method="filter_tags")
    tags_mode = django_filters.ChoiceFilter(choices=[("any", "any"), ("all", "all")],
                                            method="filter_noop")
    favorite = django_filters.BooleanFilter(method="filter_favorite")
    update_available = django_filters.BooleanFilter(method="filter_update_available")
    has_civitai = django_filters.BooleanFilter(method="filter_has_civitai")
    nsfw_max = django_filters.NumberFilter(field_name="nsfw_level", lookup_expr="lte",
                                           min_value=0, max_value=DB_INT_MAX)
    status = django_filters.ChoiceFilter(
        choices=[("present", "present"), ("missing", "missing"), ("all", "all")],
        method="filter_status")
    excluded = django_filters.ChoiceFilter(
        choices=[("false", "false"), ("true", "true"), ("all", "all")], method="filter_excluded")
    search = django_filters.CharFilter(method="filter_search")
    ordering = django_filters.ChoiceFilter(
        choices=[(f"{sign}{o}", f"{sign}{o}") for o in ORDERINGS for sign in ("", "-")],
        method="filter_ordering")

    DEFAULTS = {"status": "present", "excluded": "false", "ordering": "name"}

    class Meta:
        model = LoraModel
        fields: list[str] = []

    def __init__(self, data=None, *args, **kwargs):
        data = data.copy() if data is not None else {}
        self._raw = data
        for key, value in self.DEFAULTS.items():
            if not data.get(key):
                data[key] = value
        super().__init__(data, *args, **kwargs)

    def _getlist(self, name: str) -> list[str]:
        raw = self._raw
        values = raw.getlist(name) if hasattr(raw, "getlist") else [raw.get(name, "")]
        return _split(values)

    def filter_noop(self, queryset, name, value):
        return queryset

    def filter_folder_prefix(self, queryset, name, value):
        prefix = value.strip("/")
        if not prefix:
            return queryset
        return queryset.filter(Q(folder=prefix) | Q(folder__startswith=prefix + "/"))

    def filter_base_model(self, queryset, name, value):
        models = self._getlist("base_model")
        return queryset.filter(base_model__in=models) if models else queryset

    def filter_tags(self, queryset, name, value):
        tags = _split([value])
        if not tags:
            return queryset
        conditions = [_json_list_has("tags", t) for t in tags]
        combined = conditions[0]
        match_all = self.data.get("tags_mode") == "all"
        for cond in conditions[1:]:
            combined = (combined & cond) if match_all else (combined | cond)
        return queryset.filter(combined)

    def filter_favorite(self, queryset, name, value):
        """The requesting user's own favourites (``is_favorite`` from
        ``loras.favorites.favorites_annotate``; without it, nothing is anyone's favourite)."""
        if "is_favorite" not in queryset.query.annotations:
            return queryset.none() if value else queryset
        return queryset.filter(is_favorite=value)

    def filter_update_available(self, queryset, name, value):
        """LoRAs whose Civitai model has a newer version for the same base model (not
        ignored; ``loras.services.updates``)."""
        return queryset.filter(update_available=value)

    def filter_has_civitai(self, queryset, name, value):
        has = Q(civitai_version_id__isnull=False) | Q(civitai_model_id__isnull=False)
        return queryset.filter(has) if value else queryset.exclude(has)

    def filter_status(self, queryset, name, value):
        if value == "all":
            return queryset.exclude(status=LoraModel.Status.TRASHED)
        return queryset.filter(status=value)

    def filter_excluded(self, queryset, name, value: str):  # the hint: a string in the schema
        if value == "all":
            return queryset
        return queryset.filter(excluded=(value == "true"))

    def filter_search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        q = Q()
        for term in value.split():
            term_q = (Q(name__icontains=term) | Q(file_name__icontains=term)
                      | Q(trigger_words__icontains=term) | Q(tags__icontains=term)
                      | Q(notes__icontains=term))
            escaped = json.dumps(term)[1:-1]
            if escaped != term and connection.vendor != "postgresql":
                # SQLite keeps JSON text ASCII-escaped ("\u00e9").
                term_q |= Q(trigger_words__icontains=escaped) | Q(tags__icontains=escaped)
            q &= term_q
        return queryset.filter(q)

    def filter_ordering(self, queryset, name, value):
        """``name`` sorts case-insensitively (``Lower("name")``); ties break on id."""
        desc = value.startswith("-")
        field = value.lstrip("-")
        expr = Lower("name") if field == "name" else F(field)
        return queryset.order_by(expr.desc() if desc else expr.asc(), "-id" if desc else "id")
