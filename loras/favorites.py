"""Per-user favourite LoRAs (``LoraFavorite``): every signed-in user keeps their own."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import BooleanField as BooleanValue
from django.db.models import Exists, OuterRef, QuerySet, Value

from .models import LoraFavorite, LoraModel


def favorites_annotate(qs: QuerySet, user) -> QuerySet:
    """``qs`` (LoRAs) with ``is_favorite``: whether ``user`` favourited each row (False for an
    anonymous user)."""
    if not (user and user.is_authenticated):
        return qs.annotate(is_favorite=Value(False, output_field=BooleanValue()))
    return qs.annotate(is_favorite=Exists(LoraFavorite.objects.filter(
        user_id=user.pk, lora_id=OuterRef("pk"))))


def lora_is_favorite(*, lora: LoraModel, user) -> bool:
    """Whether ``user`` favourited ``lora`` (the annotation when present)."""
    if hasattr(lora, "is_favorite"):
        return bool(lora.is_favorite)
    if not (user and user.is_authenticated):
        return False
    return LoraFavorite.objects.filter(user_id=user.pk, lora_id=lora.pk).exists()


def lora_favorite_set(*, lora: LoraModel, user, favorite: bool) -> None:
    """Add or remove ``user``'s favourite on ``lora`` (idempotent)."""
    if favorite:
        try:
            with transaction.atomic():
                LoraFavorite.objects.get_or_create(user=user, lora=lora)
        except IntegrityError:  # a concurrent request added it
            pass
    else:
        LoraFavorite.objects.filter(user=user, lora=lora).delete()
    lora.is_favorite = bool(favorite)
