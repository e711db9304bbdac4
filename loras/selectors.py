"""Reads of the LoRA library."""

from __future__ import annotations

from .models import LoraModel


def lora_resolve(*, ref) -> LoraModel | None:
    """The present LoRA named by ``ref``: an id (int or digit string), a name (exact, then
    case-insensitive), or a sha256 / AutoV2 prefix (10+ hex). ``None`` when nothing matches."""
    ref = str(ref).strip()
    qs = LoraModel.objects.filter(status=LoraModel.Status.PRESENT).select_related("root")
    if ref.isdigit():
        found = qs.filter(pk=int(ref)).first()
        if found:
            return found
    found = qs.filter(name=ref).first() or qs.filter(name__iexact=ref).first()
    if found is None and len(ref) >= 10 and all(c in "0123456789abcdefABCDEF" for c in ref):
        found = qs.filter(sha256__startswith=ref.lower()).first()
    return found
