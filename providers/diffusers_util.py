"""Small helpers of the ``diffusers_local`` provider: A1111 sampler names, adapter names, device
choice and short error reasons. No torch import at module level."""

from __future__ import annotations

import os
from typing import Any

#: A1111's sampler names for diffusers scheduler classes (written to the PNG parameters).
SAMPLER_NAMES = {
    "EulerDiscreteScheduler": "Euler",
    "EulerAncestralDiscreteScheduler": "Euler a",
    "DDIMScheduler": "DDIM",
    "DPMSolverMultistepScheduler": "DPM++ 2M",
    "PNDMScheduler": "PNDM",
    "LMSDiscreteScheduler": "LMS",
    "HeunDiscreteScheduler": "Heun",
    "DPMSolverSinglestepScheduler": "DPM++ SDE",
    "KDPM2DiscreteScheduler": "DPM2",
    "KDPM2AncestralDiscreteScheduler": "DPM2 a",
    "UniPCMultistepScheduler": "UniPC",
    "LCMScheduler": "LCM",
}



def sampler_name(scheduler: Any) -> str:
    """A1111-style sampler name of a diffusers scheduler instance (class name when unknown)."""
    cls = type(scheduler).__name__
    return SAMPLER_NAMES.get(cls, cls)


def adapter_name_for(sha256: str) -> str:
    """The peft adapter name of a LoRA: ``"lora_"`` + the first 16 hex of its file SHA-256."""
    return "lora_" + sha256.lower()[:16]


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` -> ``"cuda"`` if available, else ``"mps"`` if available, else ``"cpu"``.

    Any other value is returned unchanged. Imports torch (about 3 s the first time).
    """
    if device != "auto":
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def _short_reason(exc: BaseException, limit: int = 240) -> str:
    """One line of an exception for a person: the first ``size mismatch`` line when there is one
    (torch lists every mismatching tensor), else the first non-empty line, cut to ``limit``."""
    text = str(exc)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    reason = next((ln for ln in lines if ln.startswith("size mismatch")), None)
    if reason is not None:
        count = sum(1 for ln in lines if ln.startswith("size mismatch"))
        reason = f"{reason} ({count} tensors differ in shape; made for another architecture?)"
    else:
        reason = lines[0] if lines else type(exc).__name__
    if len(reason) > limit:
        reason = reason[: limit - 3] + "..."
    return reason


def _int_option(value: Any, *, default: int) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return default


def _model_name(model: str) -> str:
    """The folder name of a model path as the user gave it (symlinks not resolved)."""
    return os.path.basename(os.path.normpath(os.path.expanduser(str(model))))


def _is_oom(exc: BaseException) -> bool:
    name = type(exc).__name__
    return name == "OutOfMemoryError" or "out of memory" in str(exc).lower()[:500]


def lora_component_weights(pipe: Any, wanted: dict[str, list[float]]) -> list[dict[str, float]]:
    """``set_adapters`` weights per component for adapters with separate UNet and text-encoder
    weights (A1111 ``<lora:NAME:TE:UNET>``): ``{"unet": unet_w, "text_encoder": te_w,
    "text_encoder_2": te_w}`` limited to the pipeline's LoRA-loadable components that hold the
    adapter (diffusers ``LoraBaseMixin.set_adapters`` takes one such dict per adapter).

    Args:
        wanted: adapter name -> ``[unet weight, text-encoder weight]``.
    """
    holders = pipe.get_list_adapters()  # {"unet": [names], "text_encoder": [names], ...}
    weights = []
    for name, (unet_w, te_w) in wanted.items():
        weights.append({
            component: (te_w if component.startswith("text_encoder") else unet_w)
            for component in getattr(pipe, "_lora_loadable_modules", ())
            if name in holders.get(component, ())
        })
    return weights
