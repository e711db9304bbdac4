"""Reads of the LoRA library."""

from __future__ import annotations

from .models import LoraModel


def lora_resolve(*, ref) -> LoraModel | None:
    """The LoRA named by ``ref``: an id (int or digit string), a name, or a sha256 / AutoV2
    prefix (10+ hex). ``None`` when nothing matches."""
    ref = str(ref).strip()
    if ref.isdigit():
        found = LoraModel.objects.filter(pk=int(ref)).first()
        if found:
            return found
    found = LoraModel.objects.filter(name=ref).first() or LoraModel.objects.filter(
        name__iexact=ref).first()
    if found is None and len(ref) >= 10 and all(c in "0123456789abcdefABCDEF" for c in ref):
        found = LoraModel.objects.filter(sha256__startswith=ref.lower()).first()
    return found
