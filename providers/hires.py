"""A1111's hires fix: names, sizes and the enlarging between its two passes
(docs/samplers.md#hires-fix).

A1111 (``modules/processing.py``, ``StableDiffusionProcessingTxt2Img``) makes the image at the
base size, enlarges it ``hr_scale`` times, then runs img2img over it with
``hr_second_pass_steps`` (0: the first pass's steps) at ``denoising_strength``. The "Latent"
upscalers enlarge the latents with ``torch.nn.functional.interpolate`` (modes from A1111
``modules/shared_items.py`` / ``shared.latent_upscale_modes``); the others decode first and
enlarge the picture (here: PIL's Lanczos or nearest filter).

torch is imported inside functions only: the web process uses :func:`hires_check` before a job
is queued.
"""

from __future__ import annotations

from typing import Any

#: A1111 latent upscaler label -> (interpolate mode, antialias).
LATENT_UPSCALERS: dict[str, tuple[str, bool]] = {
    "Latent": ("bilinear", False),
    "Latent (antialiased)": ("bilinear", True),
    "Latent (bicubic)": ("bicubic", False),
    "Latent (bicubic antialiased)": ("bicubic", True),
    "Latent (nearest)": ("nearest", False),
    "Latent (nearest-exact)": ("nearest-exact", False),
}
#: Upscalers that work on the decoded picture: label -> PIL resampling filter name.
PIXEL_UPSCALERS: dict[str, str] = {"Lanczos": "LANCZOS", "Nearest": "NEAREST"}

HIRES_UPSCALERS = (*LATENT_UPSCALERS, *PIXEL_UPSCALERS)

#: hr_scale bounds (A1111's slider runs 1..4).
MIN_SCALE, MAX_SCALE = 1.0, 4.0


def hires_upscaler(name: str) -> str:
    """The canonical label of an upscaler name (case-insensitive; ``""`` -> ``"Latent"``).

    Raises:
        ValueError: unknown name; the message lists the allowed ones.
    """
    wanted = str(name or "").strip().lower() or "latent"
    for label in HIRES_UPSCALERS:
        if label.lower() == wanted:
            return label
    raise ValueError(f"Unknown hires upscaler {name!r}; use one of: {', '.join(HIRES_UPSCALERS)}.")


def hires_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """The second pass's size: ``int(side * scale)`` rounded down to a multiple of 8 (A1111
    works in latents, 8 pixels each), at least 8."""
    return (max(8, int(width * scale) // 8 * 8), max(8, int(height * scale) // 8 * 8))


def hires_steps(first_steps: int, second_steps: int, strength: float) -> tuple[int, int]:
    """``(second pass steps asked, denoising steps it runs)``: ``second_steps`` 0 means the
    first pass's count; img2img runs ``int(steps * strength)`` of them (diffusers
    ``get_timesteps``; 0 is an error there, so callers refuse it)."""
    asked = int(second_steps) or int(first_steps)
    return asked, min(asked, int(asked * float(strength)))


def upscale_latents(latents: Any, size: tuple[int, int], upscaler: str, *, factor: int = 8):
    """Enlarge a ``(batch, C, h, w)`` latent tensor to ``size`` (pixels, width x height);
    ``factor`` is the VAE's pixels per latent (``pipe.vae_scale_factor``: 8 for SD/SDXL)."""
    import torch

    mode, antialias = LATENT_UPSCALERS[upscaler]
    target = (size[1] // factor, size[0] // factor)
    kwargs: dict[str, Any] = {"size": target, "mode": mode}
    if mode in ("bilinear", "bicubic"):
        kwargs["antialias"] = antialias
    with torch.no_grad():
        return torch.nn.functional.interpolate(latents, **kwargs)


def upscale_images(images: list, size: tuple[int, int], upscaler: str) -> list:
    """Enlarge PIL images to ``size`` with the upscaler's PIL filter."""
    from PIL import Image

    resample = getattr(Image.Resampling, PIXEL_UPSCALERS[upscaler])
    return [img.convert("RGB").resize(size, resample) for img in images]
