"""PNG files with an A1111-style ``parameters`` text chunk, and WebP thumbnails.

The infotext itself (layout, field order, quoting) is written and read by
:mod:`images.infotext` (docs/infotext.md).
"""

from __future__ import annotations

import io
from typing import Any

from PIL import Image as PILImage
from PIL.PngImagePlugin import PngInfo


def build_infotext(*, prompt: str, negative_prompt: str, steps: int, sampler: str,
                   cfg_scale: float, seed: int, width: int, height: int, model: str,
                   lora_hashes: list[tuple[str, str]] | None = None,
                   extra: dict[str, Any] | None = None) -> str:
    """The A1111 ``parameters`` text from the fields this older signature knows
    (``lora_hashes`` is ``[(name, 12-hex)]``); :func:`images.infotext.build_infotext` writes
    every field, :func:`images.infotext.infotext_for_request` the whole infotext of a request.
    ``cfg_scale`` is written as Python writes the float (``7.0``), as A1111's API does."""
    from .infotext import build_infotext as build

    extra = dict(extra or {})
    return build(prompt=prompt, negative_prompt=negative_prompt, steps=steps,
                 sampler=sampler or "Default", cfg_scale=str(cfg_scale), seed=seed,
                 width=width, height=height, model=model,
                 denoising_strength=extra.pop("Denoising strength", None),
                 lora_hashes=lora_hashes or (), extra=extra)


def png_bytes(image: PILImage.Image, *, parameters: str) -> bytes:
    """Encode ``image`` as PNG with a ``parameters`` tEXt chunk."""
    info = PngInfo()
    info.add_text("parameters", parameters)
    buf = io.BytesIO()
    image.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def thumbnail_bytes(image: PILImage.Image, *, size: int) -> bytes:
    """A WebP thumbnail whose longest side is at most ``size`` pixels."""
    thumb = image.convert("RGB").copy()
    thumb.thumbnail((size, size))
    buf = io.BytesIO()
    thumb.save(buf, format="WEBP", quality=80)
    return buf.getvalue()
