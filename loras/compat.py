"""Does a LoRA fit a model? Checked before a generation is queued.

Two checks (docs/prompt-syntax.md#lora-compatibility):

1. the family of the LoRA's base model (``LoraModel.base_model``, Civitai's ``baseModel`` names:
   "SD 1.5", "SDXL 1.0", "Pony", "Flux.1 D"...; docs/protocols.md#civitai-base-models) against the
   families the profile's ``pipeline_type`` runs: ``sd`` = SD1.x or SD2.x, ``sdxl`` = SDXL (with
   Pony, Illustrious, NoobAI, Playground v2), ``flux`` = Flux; a profile may narrow its family with
   ``options["base_model"]`` (e.g. "SD 2.1"). An unknown base model ('' or a name we do not
   know) passes this check;
2. the file itself: it must be present, scanned without error, have a readable safetensors
   header, and, when both are known, the width of the text embedding its UNet cross-attention
   layers read (the input size of an ``attn2.to_k`` down projection) must equal the model's
   ``cross_attention_dim`` (from ``<model folder>/unet/config.json``). This catches what the
   names cannot: an SD 1.5 LoRA (768) on a model with another text width (the tiny demo model's
   32), the error PEFT reports only at load time as "size mismatch".

A1111 does neither (it loads what it can and logs the rest); we refuse before queuing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .models import LoraModel

SD1, SD2, SDXL, FLUX = "SD1.x", "SD2.x", "SDXL", "Flux"
#: The families a pipeline type runs.
PIPELINE_FAMILIES: dict[str, tuple[str, ...]] = {"sd": (SD1, SD2), "sdxl": (SDXL,),
                                                 "flux": (FLUX,)}
#: Base models of SDXL's architecture that Civitai lists under their own names.
SDXL_NAMES = ("Pony", "Illustrious", "NoobAI", "Playground v2", "Playground v2.5")
#: Civitai base-model prefixes of other architectures (their LoRAs fit none of ours).
OTHER_PREFIXES = ("SD 3", "Stable Cascade", "SVD", "Hunyuan", "Kolors", "Lumina", "AuraFlow",
                  "PixArt", "Wan Video", "CogVideoX", "Mochi", "LTXV", "HiDream", "Chroma",
                  "Qwen", "Pony V7", "ODOR")


def base_model_family(base_model: str) -> str:
    """The family of a Civitai base-model name: SD1.x, SD2.x, SDXL, Flux, the name itself for
    another known architecture ("SD 3.5 Large"), or '' when unknown ('' and "Other" included)."""
    name = (base_model or "").strip()
    if not name:
        return ""
    if name.startswith(OTHER_PREFIXES):
        return name
    if name.startswith("SD 1"):
        return SD1
    if name.startswith("SD 2"):
        return SD2
    if name.startswith("SDXL") or name in SDXL_NAMES:
        return SDXL
    if name.startswith("Flux"):
        return FLUX
    return ""


def _model_families(pipeline_type: str, model_base: str = "") -> tuple[str, ...]:
    family = base_model_family(model_base)
    if family:
        return (family,)
    return PIPELINE_FAMILIES.get(pipeline_type, ())


def _family_label(families: tuple[str, ...], pipeline_type: str) -> str:
    return "/".join(families) if families else pipeline_type


def lora_text_width(path: str) -> int | None:
    """The text-embedding width a LoRA file's UNet cross-attention layers read (the second
    dimension of an ``attn2.to_k``/``to_v`` down projection), None when it has none (Flux,
    text-encoder-only) or the shapes are missing.

    Raises:
        loras.metadata.HeaderError, OSError: the header cannot be read.
    """
    from .metadata import header_read

    header = header_read(path)
    for key, spec in header.items():
        if ("attn2" in key and ("to_k" in key or "to_v" in key)
                and key.endswith(("lora_down.weight", ".lora_A.weight", ".lora.down.weight",
                                  ".lora_A.default.weight"))
                and isinstance(spec, dict) and isinstance(spec.get("shape"), list)
                and len(spec["shape"]) >= 2):
            return int(spec["shape"][1])
    return None


def model_text_width(model_path: str) -> int | None:
    """The UNet ``cross_attention_dim`` of a diffusers model folder (``unet/config.json``), None
    for a single file, a remote model id or an unreadable config."""
    if not model_path:
        return None
    config = Path(model_path) / "unet" / "config.json"
    try:
        value = json.loads(config.read_text(encoding="utf-8")).get("cross_attention_dim")
    except (OSError, ValueError, AttributeError):
        return None
    if isinstance(value, list) and value:
        value = value[0]
    return int(value) if isinstance(value, int) else None


def lora_fits(lora: LoraModel, pipeline_type: str, *, model_base: str = "",
              model_width: int | None = None) -> tuple[bool, str, str]:
    """Whether ``lora`` can be applied to a model of ``pipeline_type``.

    Args:
        model_base: the model's own base-model name when known (``options["base_model"]``).
        model_width: the model's UNet ``cross_attention_dim`` when known (see
            :func:`model_text_width`); None skips the width check.

    Returns:
        ``(ok, lora_family, model_family)``: the families as shown to users ("SD1.x", "SDXL",
        "SD1.x/SD2.x"...); ``lora_family`` says "unknown" for an unknown base model, and names
        the defect for a broken file ("missing file", "unreadable file: ...").
    """
    families = _model_families(pipeline_type, model_base)
    model_label = _family_label(families, pipeline_type)
    if lora.status != LoraModel.Status.PRESENT:
        return False, f"{lora.status} file", model_label
    if lora.scan_error:
        return False, f"unreadable file: {lora.scan_error.splitlines()[0][:200]}", model_label
    family = base_model_family(lora.base_model)
    label = family or "unknown"
    if not families:  # a remote provider's own type, the fake provider: nothing to compare
        return True, label, model_label
    if family and family not in families:
        return False, label, model_label
    if os.path.exists(lora.abs_path) or model_width is not None:
        from .metadata import HeaderError

        try:
            width = lora_text_width(lora.abs_path)
        except (HeaderError, OSError) as exc:
            return False, f"unreadable file: {exc}", model_label
        if width is not None and model_width is not None and width != model_width:
            return False, f"{label}, for {width}-wide text embeddings", \
                f"{model_label}, {model_width}-wide"
    return True, label, model_label


def loras_check(loras: list[LoraModel], profile) -> None:
    """Refuse a generation whose LoRAs do not fit ``profile`` (a ``ModelProfile``), before it is
    queued. Nothing is checked for a profile whose pipeline type has no known family (remote
    providers' own types, the fake provider) beyond the file's presence.

    Raises:
        core.exceptions.ApplicationError: 400 ``lora_incompatible`` naming each LoRA that does
            not fit, its family and the model's; ``fields={"loras": [one message per LoRA]}``.
    """
    from core.exceptions import ApplicationError

    options = profile.options if isinstance(profile.options, dict) else {}
    model_base = str(options.get("base_model") or "")
    width = (model_text_width(profile.model_path)
             if profile.pipeline_type in PIPELINE_FAMILIES else None)
    problems = []
    for lora in loras:
        ok, lora_family, model_family = lora_fits(lora, profile.pipeline_type,
                                                  model_base=model_base, model_width=width)
        if not ok:
            problems.append(f"LoRA {lora.name!r} ({lora_family}) does not fit model "
                            f"{profile.slug!r} ({model_family}).")
    if problems:
        raise ApplicationError("lora_incompatible", " ".join(problems),
                               fields={"loras": problems}, status=400)
