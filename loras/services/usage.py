"""How often each LoRA is used (``usage_count``, ``last_used_at``; "Most used" sorts on it)."""

from __future__ import annotations

from django.db.models import F
from django.utils import timezone

from ..models import LoraModel


def lora_usage_record(*, lora_ids, when=None) -> int:
    """Count one use of every LoRA in ``lora_ids`` (ids; None, duplicates and unknown ids are
    ignored) at ``when`` (default now), in one UPDATE with ``F()`` so concurrent generations
    never lose a count. Called once per generation by the ``images.hooks.hook_usage`` hook.

    Returns the number of rows updated.
    """
    ids = sorted({int(i) for i in lora_ids or [] if isinstance(i, int) or str(i).isdigit()})
    if not ids:
        return 0
    return LoraModel.objects.filter(pk__in=ids).update(
        usage_count=F("usage_count") + 1, last_used_at=when or timezone.now())
