"""The local upscaler: Lanczos resampling followed by an unsharp mask. Pillow only, always there.

It needs no model and no GPU, so ``POST /api/upscale/`` with ``upscaler="lanczos"`` works on every
installation. Lanczos (a windowed sinc, ``PIL.Image.Resampling.LANCZOS``) is the sharpest of
Pillow's resampling filters; enlarging still softens edges, so a mild unsharp mask
(``PIL.ImageFilter.UnsharpMask``) restores some local contrast.
"""

from __future__ import annotations

from typing import Any

from .base import GeneratedImage, ProgressSink, ProviderError, UpscaleSpec

#: The name of the local upscaler in requests and in ``GenerationRequest.upscaler``.
LANCZOS = "lanczos"

#: Factors ``POST /api/upscale/`` accepts.
FACTORS = (2, 4)

#: Unsharp mask applied after resampling: ``radius`` in output pixels, ``percent`` strength,
#: ``threshold`` the minimum brightness change (0..255) that gets sharpened.
SHARPEN = {"radius": 1.2, "percent": 60, "threshold": 2}


def lanczos_upscale(image: Any, factor: int, *, sharpen: bool = True) -> Any:
    """Enlarge ``image`` by the integer ``factor`` with Lanczos, then unsharp-mask it.

    Args:
        image: a PIL image of any mode; palette/CMYK/etc. images are converted to RGB(A) first.
        factor: 2 or 4 (any integer >= 1 works; 1 returns a sharpened copy).
        sharpen: apply :data:`SHARPEN` after resampling.

    Returns:
        A new PIL image of ``(width * factor, height * factor)`` pixels, mode RGB or RGBA.

    Raises:
        ProviderError: ``invalid_request`` for a factor below 1.
    """
    from PIL import Image, ImageFilter

    factor = int(factor)
    if factor < 1:
        raise ProviderError("invalid_request", f"Upscale factor must be >= 1, got {factor}.")
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    out = image.resize((image.width * factor, image.height * factor), Image.Resampling.LANCZOS)
    if sharpen:
        if out.mode == "RGBA":  # UnsharpMask works on RGB; keep alpha untouched
            rgb, alpha = out.convert("RGB"), out.getchannel("A")
            out = rgb.filter(ImageFilter.UnsharpMask(**SHARPEN))
            out.putalpha(alpha)
        else:
            out = out.filter(ImageFilter.UnsharpMask(**SHARPEN))
    return out


def local_upscale(spec: UpscaleSpec, sink: ProgressSink) -> GeneratedImage:
    """Run the local upscaler on ``spec.image``; reports one step to ``sink``.

    Returns:
        One :class:`GeneratedImage` (seed 0, ``info={"upscaler": "Lanczos", "factor": n}``).

    Raises:
        ProviderError: ``invalid_request`` when ``spec.factor`` is not 2 or 4.
    """
    if spec.factor not in FACTORS:
        raise ProviderError("invalid_request",
                            f"Upscale factor must be one of {FACTORS}, got {spec.factor}.")
    out = lanczos_upscale(spec.image, spec.factor)
    sink.step(1, 1)
    return GeneratedImage(image=out, seed=0, info={"upscaler": "Lanczos", "factor": spec.factor})
