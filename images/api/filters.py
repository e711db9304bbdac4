"""django-filter FilterSets of the images API.

Image filters: ``project`` (id), ``tag`` (name or slug), ``model`` (model profile name,
case-insensitive), ``lora`` (LoRA name or library id, as recorded at generation),
``provider``, ``favorite`` / ``is_public`` (true/false), ``created_after`` /
``created_before`` (dates ``YYYY-MM-DD``, inclusive), ``q`` (text in prompt, title or
caption), ``user`` (owner's username); ``ordering`` by ``created_at``, ``id``, ``is_favorite``,
``model_name`` or ``seed`` (comma-separated, ``-`` for descending; the gallery sends a unique
last key, ``-id``, so pages never overlap).
"""

import json
import re

import django_filters
from django import forms
from django.db.models import Q, TextField
from django.db.models.functions import Cast
from django_filters.constants import EMPTY_VALUES

from core.exceptions import ApplicationError

from ..models import Image, UsageLog


class _IsoDateField(forms.DateField):
    """A date as ``YYYY-MM-DD`` (the OpenAPI ``date`` format). A parameter sent empty
    (``?created_after=``) is refused rather than read as "no filter"."""

    input_formats = ["%Y-%m-%d"]
    default_error_messages = {"invalid": "Enter a date as YYYY-MM-DD."}

    def clean(self, value):
        if value == "":  # the parameter was sent; an omitted one is None
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return super().clean(value)


class IsoDateFilter(django_filters.DateFilter):
    field_class = _IsoDateField


class StrictOrderingFilter(django_filters.OrderingFilter):
    """``?ordering=`` with a known field name per comma-separated item; a parameter sent empty
    or with an empty item (``?ordering=,``) is 400 (django-filter would order by nothing)."""

    def filter(self, qs, value):
        sent = self.parent.data.get(self.field_name) if self.parent is not None else None
        if sent is not None and (not value or any(v in EMPTY_VALUES for v in value)):
            msg = "Name a field to order by (comma-separated, '-' for descending)."
            raise ApplicationError("invalid", f"{self.field_name}: {msg}",
                                   fields={self.field_name: [msg]})
        return super().filter(qs, value)


class ImageFilter(django_filters.FilterSet):
    project = django_filters.NumberFilter(field_name="project_id", min_value=0,
                                          max_value=2**63 - 1)  # huge numbers: 400
    tag = django_filters.CharFilter(method="filter_tag")
    model = django_filters.CharFilter(field_name="model_name", lookup_expr="iexact")
    lora = django_filters.CharFilter(method="filter_lora")
    provider = django_filters.CharFilter(field_name="provider")
    favorite = django_filters.BooleanFilter(field_name="is_favorite")
    is_public = django_filters.BooleanFilter(field_name="is_public")
    created_after = IsoDateFilter(field_name="created_at", lookup_expr="date__gte")
    created_before = IsoDateFilter(field_name="created_at", lookup_expr="date__lte")
    q = django_filters.CharFilter(method="filter_q")
    user = django_filters.CharFilter(field_name="user__username")
    ordering = StrictOrderingFilter(fields=(("created_at", "created_at"), ("id", "id"),
                                            ("is_favorite", "is_favorite"),
                                            ("model_name", "model_name"), ("seed", "seed")))

    class Meta:
        model = Image
        fields: list[str] = []

    def filter_tag(self, qs, name, value):
        value = value.strip().lower()
        return qs.filter(Q(tags__name=value) | Q(tags__slug=value)).distinct()

    def filter_lora(self, qs, name, value):
        # Image.loras is [{"lora_id", "name", "weight", ...}] stored by json.dumps (", " and
        # ": " separators, PostgreSQL jsonb prints the same), so a text match is portable
        # where JSON containment is not (SQLite).
        value = value.strip()
        qs = qs.annotate(loras_text=Cast("loras", TextField()))
        # ASCII digits only: str.isdigit() is also true for "³" or "①", which int() refuses.
        if re.fullmatch(r"[0-9]{1,18}", value):
            return qs.filter(loras_text__regex=rf'"lora_id": {int(value)}[,}}]')
        return qs.filter(loras_text__icontains=f'"name": {json.dumps(value)}')

    def filter_q(self, qs, name, value):
        return qs.filter(Q(prompt__icontains=value) | Q(title__icontains=value)
                         | Q(caption__icontains=value))


class UsageFilter(django_filters.FilterSet):
    provider = django_filters.CharFilter(field_name="provider")
    model = django_filters.CharFilter(field_name="model_name", lookup_expr="iexact")
    kind = django_filters.CharFilter(field_name="kind")
    user = django_filters.CharFilter(field_name="user__username")
    date_from = IsoDateFilter(field_name="created_at", lookup_expr="date__gte")
    date_to = IsoDateFilter(field_name="created_at", lookup_expr="date__lte")

    class Meta:
        model = UsageLog
        fields: list[str] = []
