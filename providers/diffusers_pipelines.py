"""Pipeline plumbing of the ``diffusers_local`` provider: which diffusers classes serve a pipeline
type, how a model is loaded offline (diffusers folder or single ``.safetensors`` checkpoint), the
dtype per device, memory accounting for the cache, and cheap preview images from latents.

torch and diffusers are imported inside functions (about 3.4 s; docs/offline-models.md#import-cost),
under :data:`IMPORT_LOCK` because diffusers' lazy module is not safe to import from two threads
at once.
"""

from __future__ import annotations

import base64
import io
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .base import ProviderError

IMPORT_LOCK = threading.Lock()

#: Config folders shipped with Atelier, one per pipeline type (``providers/configs/<type>``).
CONFIGS_DIR = Path(__file__).resolve().parent / "configs"

#: Single-file checkpoint suffixes that load. ``.ckpt`` files are pickles (arbitrary code on
#: load) and are refused.
SINGLE_FILE_SUFFIXES = (".safetensors",)


@dataclass(frozen=True)
class PipelineKind:
    """The diffusers classes of one pipeline type.

    ``txt2img``/``img2img``/``inpaint`` are class names in the ``diffusers`` package; ``folder``
    the ``model_index.json`` ``_class_name`` values a diffusers folder of this type may hold.
    ``latent_rgb`` is a 4x3 matrix (and ``latent_bias`` 3 values) that maps a latent pixel to an
    approximate RGB value in -1..1, for previews; None where no cheap approximation is used.
    """

    txt2img: str
    img2img: str
    inpaint: str
    folder: frozenset[str]
    latent_rgb: tuple[tuple[float, float, float], ...] | None = None
    latent_bias: tuple[float, float, float] = (0.0, 0.0, 0.0)
    #: The native enlargement of an upscale pipeline type (``txt2img`` then names the upscale
    #: pipeline class and ``img2img``/``inpaint`` are empty); 0 for generation types.
    upscale_factor: int = 0
    #: An upscale pipeline's source sides are resized to multiples of this many pixels first.
    size_multiple: int = 8


# Latent -> RGB factors: SD 1.x from A1111's "Approx cheap" live preview
# (modules/sd_vae_approx.py, cheap_approximation); SDXL from ComfyUI (comfy/latent_formats.py,
# SDXL.latent_rgb_factors / latent_rgb_factors_bias). Flux latents are packed 2x2 patches of 16
# channels inside the denoising loop, so no cheap preview is made for them.
_SD_LATENT_RGB = ((0.298, 0.207, 0.208), (0.187, 0.286, 0.173),
                  (-0.158, 0.189, 0.264), (-0.184, -0.271, -0.473))
_SDXL_LATENT_RGB = ((0.3651, 0.4232, 0.4341), (-0.2533, -0.0042, 0.1068),
                    (0.1076, 0.1111, -0.0362), (-0.3165, -0.2492, -0.2188))

PIPELINE_KINDS: dict[str, PipelineKind] = {
    "sd": PipelineKind(
        txt2img="StableDiffusionPipeline",
        img2img="StableDiffusionImg2ImgPipeline",
        inpaint="StableDiffusionInpaintPipeline",
        folder=frozenset({"StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline",
                          "StableDiffusionInpaintPipeline"}),
        latent_rgb=_SD_LATENT_RGB,
    ),
    "sdxl": PipelineKind(
        txt2img="StableDiffusionXLPipeline",
        img2img="StableDiffusionXLImg2ImgPipeline",
        inpaint="StableDiffusionXLInpaintPipeline",
        folder=frozenset({"StableDiffusionXLPipeline", "StableDiffusionXLImg2ImgPipeline",
                          "StableDiffusionXLInpaintPipeline"}),
        latent_rgb=_SDXL_LATENT_RGB,
        latent_bias=(0.1084, -0.0175, -0.0011),
    ),
    "flux": PipelineKind(
        txt2img="FluxPipeline",
        img2img="FluxImg2ImgPipeline",
        inpaint="FluxInpaintPipeline",
        folder=frozenset({"FluxPipeline", "FluxImg2ImgPipeline", "FluxInpaintPipeline"}),
    ),
    # Upscale only (POST /api/upscale/ with a model profile of this type); see
    # providers/diffusers_upscale.py. diffusers' x4 upscaler (stabilityai/stable-diffusion-x4-
    # upscaler layout): the UNet denoises at the source resolution, the VAE decodes 4x larger.
    "sd-upscale": PipelineKind(
        txt2img="StableDiffusionUpscalePipeline",
        img2img="",
        inpaint="",
        folder=frozenset({"StableDiffusionUpscalePipeline"}),
        upscale_factor=4,
    ),
    # stabilityai/sd-x2-latent-upscaler layout: the VAE encodes the source, the latents are
    # enlarged 2x and denoised by a K-diffusion-style UNet, then decoded.
    "sd-latent-upscale": PipelineKind(
        txt2img="StableDiffusionLatentUpscalePipeline",
        img2img="",
        inpaint="",
        folder=frozenset({"StableDiffusionLatentUpscalePipeline"}),
        upscale_factor=2,
        size_multiple=64,
    ),
}

#: Pipeline types that only upscale.
UPSCALE_TYPES = tuple(t for t, k in PIPELINE_KINDS.items() if k.upscale_factor)


def diffusers_class(name: str):
    """``getattr(diffusers, name)``, imported under :data:`IMPORT_LOCK`."""
    with IMPORT_LOCK:
        import diffusers

        return getattr(diffusers, name)


def dtype_for(device: str, pipeline_type: str):
    """The torch dtype to run ``pipeline_type`` in on ``device``.

    float32 on CPU (half precision is slow or unsupported there); on CUDA bfloat16 for Flux (it
    overflows in float16) and float16 for SD/SDXL; on MPS float16 (bfloat16 needs macOS 14+).
    """
    import torch

    if device.startswith("cuda"):
        if pipeline_type == "flux" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float16
    if device == "mps":
        return torch.float16
    return torch.float32


# ----------------------------------------------------------------------------- locating models
@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from: ``path`` (realpath) of a diffusers folder or of a single file,
    and for a single file the ``config`` folder that describes its components."""

    path: str
    single_file: bool
    config: str = ""


def locate_model(model: str, pipeline_type: str, options: dict[str, Any]) -> ModelSource:
    """Check that ``model`` is a loadable diffusers folder or single-file checkpoint.

    Args:
        model: a folder with ``model_index.json``, or a ``.safetensors`` checkpoint file.
        pipeline_type: a key of :data:`PIPELINE_KINDS`.
        options: the profile's options; ``options["config"]`` (a diffusers folder holding
            ``model_index.json`` and the component configs/tokenizers, weights not needed) is
            the config of a single file. Without it, ``providers/configs/<pipeline_type>``
            shipped with Atelier is used when present.

    Raises:
        ProviderError: ``model_not_found``, ``model_load_failed`` (unreadable index, ``.ckpt``,
            no config for a single file) or ``unsupported_pipeline`` (folder of another type).
    """
    kind = PIPELINE_KINDS[pipeline_type]
    path = os.path.realpath(os.path.expanduser(str(model or "")))
    if model and os.path.isfile(path):
        if not path.lower().endswith(SINGLE_FILE_SUFFIXES):
            raise ProviderError(
                "model_load_failed",
                f"{model!r} is not a .safetensors checkpoint; .ckpt (pickle) files are refused "
                "because loading them can run arbitrary code.",
            )
        config = str(options.get("config") or "")
        if not config and (CONFIGS_DIR / pipeline_type / "model_index.json").is_file():
            config = str(CONFIGS_DIR / pipeline_type)
        if not config:
            raise ProviderError(
                "model_load_failed",
                f"No config folder for a single-file {pipeline_type!r} checkpoint: set the model "
                "profile option 'config' to a diffusers folder of the same architecture.",
            )
        config = os.path.realpath(os.path.expanduser(config))
        _check_index(config, kind, pipeline_type, label=f"config {config!r}")
        _check_tokenizers(config)
        return ModelSource(path=path, single_file=True, config=config)
    if not model or not os.path.isdir(path):
        raise ProviderError("model_not_found", f"No model folder or checkpoint at {model!r}.")
    _check_index(path, kind, pipeline_type, label=repr(model))
    return ModelSource(path=path, single_file=False)


def _check_index(folder: str, kind: PipelineKind, pipeline_type: str, *, label: str) -> None:
    index = os.path.join(folder, "model_index.json")
    if not os.path.isfile(index):
        raise ProviderError(
            "model_not_found", f"{label} is not a diffusers model folder (no model_index.json).")
    try:
        with open(index, encoding="utf-8") as fh:
            class_name = json.load(fh).get("_class_name", "")
    except (OSError, ValueError, AttributeError) as exc:
        raise ProviderError("model_load_failed", f"Cannot read {index}: {exc}") from exc
    if class_name and class_name not in kind.folder:
        raise ProviderError(
            "unsupported_pipeline",
            f"{label} holds a {class_name}; the {pipeline_type!r} pipeline type needs one of "
            f"{', '.join(sorted(kind.folder))}.",
        )


#: Files of which a tokenizer folder needs at least one (CLIP BPE, fast tokenizers, T5).
TOKENIZER_FILES = ("vocab.json", "tokenizer.json", "spiece.model")


def _check_tokenizers(config: str) -> None:
    """Every ``tokenizer*`` component of a single file's config folder must have its files:
    checkpoints do not contain tokenizers, and nothing may be fetched from a hub.

    Raises:
        ProviderError: ``model_load_failed`` naming the folder and the files to add.
    """
    with open(os.path.join(config, "model_index.json"), encoding="utf-8") as fh:
        index = json.load(fh)
    for name, value in index.items():
        if not name.startswith("tokenizer") or not isinstance(value, list) or value[0] is None:
            continue
        folder = os.path.join(config, name)
        if not any(os.path.isfile(os.path.join(folder, f)) for f in TOKENIZER_FILES):
            raise ProviderError(
                "model_load_failed",
                f"The config folder {config} has no tokenizer files in {name}/ (one of "
                f"{', '.join(TOKENIZER_FILES)}); checkpoints do not contain them and no hub is "
                "used. Copy them from a diffusers copy of this model (see providers/configs/"
                "README.md) or set the profile option 'config' to a complete folder.",
            )


def load_pipeline(source: ModelSource, pipeline_type: str, device: str):
    """Load the txt2img pipeline of ``source`` offline and move it to ``device``.

    A folder loads with ``from_pretrained(folder, local_files_only=True)``; a single file with
    ``from_single_file(file, config=<config folder>, local_files_only=True)``, which takes every
    config and tokenizer from that folder and the weights from the file (diffusers' converters
    map the original LDM key layout). The safety checker is never loaded.

    Raises:
        Exception: whatever diffusers raises; the caller maps it to ``ProviderError``.
    """
    import torch

    kind = PIPELINE_KINDS[pipeline_type]
    cls = diffusers_class(kind.txt2img)
    extra: dict[str, Any] = {}
    if pipeline_type == "sd":
        extra = {"safety_checker": None, "requires_safety_checker": False}
    if source.single_file:
        pipe = cls.from_single_file(source.path, config=source.config, local_files_only=True,
                                    **extra)
    else:
        pipe = cls.from_pretrained(source.path, local_files_only=True, **extra)
    dtype = dtype_for(device, pipeline_type)
    # dtype through .to(): diffusers 0.42 deprecates from_pretrained(torch_dtype=...) in favour
    # of dtype=..., which older releases do not take.
    pipe = pipe.to(device) if dtype == torch.float32 else pipe.to(device, dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def variant_pipeline(pipe: Any, pipeline_type: str, kind: str):
    """The img2img or inpaint pipeline sharing every module of the txt2img ``pipe``
    (``<Class>.from_pipe``: no copy, about 8 ms; LoRA adapters on the shared UNet apply)."""
    cls = diffusers_class(getattr(PIPELINE_KINDS[pipeline_type], kind))
    variant = cls.from_pipe(pipe)
    variant.set_progress_bar_config(disable=True)
    return variant


def pipeline_bytes(pipe: Any) -> int:
    """Bytes held by the parameters and buffers of every torch module of ``pipe``."""
    import torch

    total = 0
    for component in getattr(pipe, "components", {}).values():
        if isinstance(component, torch.nn.Module):
            for tensor in list(component.parameters()) + list(component.buffers()):
                total += tensor.numel() * tensor.element_size()
    return total


def folder_type(folder: Path) -> str:
    """The pipeline type of a diffusers folder from its ``model_index.json`` (``""`` if none)."""
    try:
        class_name = json.loads((folder / "model_index.json").read_text("utf-8")).get(
            "_class_name", "")
    except (OSError, ValueError, AttributeError):
        return ""
    return next((t for t, k in PIPELINE_KINDS.items() if class_name in k.folder), "")


def checkpoint_type(path: Path) -> str:
    """``sd``/``sdxl``/``flux`` from the tensor names in a .safetensors header, ``""`` for
    anything else (LoRAs, VAEs). Reads only the header (8 + N bytes, N capped at 64 MiB)."""
    import struct

    try:
        with open(path, "rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            if size > 64 * 1024 * 1024:
                return ""
            keys = json.loads(fh.read(size)).keys()
    except (OSError, ValueError, struct.error):
        return ""
    if any(k.startswith("conditioner.embedders.1.") for k in keys):
        return "sdxl"
    if any(k.startswith("model.diffusion_model.") for k in keys):
        if any(".double_blocks." in k for k in keys):
            return "flux"
        return "sd"
    if any(k.startswith("double_blocks.") for k in keys):
        return "flux"
    return ""


# ----------------------------------------------------------------------------- previews
def latent_preview(latents: Any, pipeline_type: str, *, max_side: int = 128) -> str | None:
    """A small WebP data URL approximating the first image of ``latents`` (no VAE decode).

    Each latent pixel is mapped to RGB with the linear factors of :class:`PipelineKind`
    (``latent_rgb``), so the preview has 1/8 of the image's resolution (64x64 for a 512x512
    image), shrunk to at most ``max_side`` pixels, never enlarged. Costs well under a millisecond
    per 64x64 latent.

    Returns:
        ``"data:image/webp;base64,..."`` or None when the type has no factors (Flux) or the
        latents are not ``(batch, 4, h, w)``.
    """
    import torch
    from PIL import Image

    kind = PIPELINE_KINDS.get(pipeline_type)
    if kind is None or kind.latent_rgb is None:
        return None
    if getattr(latents, "ndim", 0) != 4 or latents.shape[1] != len(kind.latent_rgb):
        return None
    factors = torch.tensor(kind.latent_rgb, dtype=torch.float32)
    bias = torch.tensor(kind.latent_bias, dtype=torch.float32)
    with torch.no_grad():
        lat = latents[0].detach().to("cpu", torch.float32)
        rgb = torch.einsum("chw,cr->hwr", lat, factors) + bias
        rgb = ((rgb.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    img = Image.fromarray(rgb, "RGB")
    if max(img.size) > max_side:  # never enlarged: clients scale it up (a few hundred bytes)
        img.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="WEBP", quality=70)
    return "data:image/webp;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def models_in(root: Path) -> list[dict]:
    """Diffusers folders (``model_index.json`` of a known class) and ``.safetensors``
    checkpoints whose tensor names say SD/SDXL/Flux (header only) directly under ``root``, as
    ``[{"id": <absolute path>, "name": <file or folder name>, "pipeline_type": ...}]``; ``[]``
    when ``root`` is not a folder."""
    if not str(root) or not root.is_dir():
        return []
    found = []
    for child in sorted(root.iterdir()):
        if child.is_dir() and (child / "model_index.json").is_file():
            ptype = folder_type(child)
        elif child.is_file() and child.suffix.lower() == ".safetensors":
            ptype = checkpoint_type(child)
        else:
            continue
        if ptype:
            found.append({"id": str(child), "name": child.name, "pipeline_type": ptype})
    return found
