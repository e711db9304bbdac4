"""PNG files with an A1111-style ``parameters`` text chunk, and WebP thumbnails.

Infotext layout (A1111 ``modules/processing.py: create_infotext``; the parameters line is one
line, wrapped here)::

    <prompt>
    Negative prompt: <negative prompt>
    Steps: 20, Sampler: Euler, CFG scale: 7.0, Seed: 42, Size: 512x512, Model: name,
    Lora hashes: "a: 0123456789ab"
"""

from __future__ import annotations

import io
from typing import Any

from PIL import Image as PILImage
from PIL.PngImagePlugin import PngInfo


def _quote(value: str) -> str:
    """Quote a value that contains a comma, colon or quote, as A1111 does."""
    value = str(value)
    if any(c in value for c in ',:"\n'):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return value


def build_infotext(*, prompt: str, negative_prompt: str, steps: int, sampler: str,
                   cfg_scale: float, seed: int, width: int, height: int, model: str,
                   lora_hashes: list[tuple[str, str]] | None = None,
                   extra: dict[str, Any] | None = None) -> str:
    """Return the A1111 ``parameters`` text. ``lora_hashes`` is ``[(name, 12-hex)]``."""
    fields: dict[str, Any] = {
        "Steps": steps,
        "Sampler": sampler or "Default",
        "CFG scale": cfg_scale,
        "Seed": seed,
        "Size": f"{width}x{height}",
        "Model": model,
    }
    if lora_hashes:
        fields["Lora hashes"] = ", ".join(f"{name}: {h}" for name, h in lora_hashes)
    fields.update(extra or {})
    lines = [prompt]
    if negative_prompt:
        lines.append(f"Negative prompt: {negative_prompt}")
    lines.append(", ".join(f"{k}: {_quote(v)}" for k, v in fields.items() if v not in (None, "")))
    return "\n".join(lines)


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
