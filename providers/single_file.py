"""Write a Stable Diffusion 1.x diffusers pipeline as ONE ``.safetensors`` checkpoint in the
original (CompVis/LDM, A1111) layout: ``model.diffusion_model.*`` (UNet),
``first_stage_model.*`` (VAE) and ``cond_stage_model.transformer.*`` (CLIP text encoder).

This is the inverse of diffusers' single-file loader (``diffusers.loaders.single_file_utils``:
``convert_ldm_unet_checkpoint``, ``convert_ldm_vae_checkpoint``, ``convert_ldm_clip_checkpoint``),
ported from diffusers' ``scripts/convert_diffusers_to_original_stable_diffusion.py`` (which is not
part of the pip package) and generalised from SD 1.5's fixed 4 blocks / 2 layers to any
``block_out_channels`` / ``layers_per_block`` read from the component configs, so the tiny demo
pipeline converts too. Used to make single-file checkpoints for tests and demos offline.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

_UNET_TOP = [
    # (original, diffusers)
    ("time_embed.0.", "time_embedding.linear_1."),
    ("time_embed.2.", "time_embedding.linear_2."),
    ("input_blocks.0.0.", "conv_in."),
    ("out.0.", "conv_norm_out."),
    ("out.2.", "conv_out."),
]
_UNET_RESNET = [
    ("in_layers.0", "norm1"),
    ("in_layers.2", "conv1"),
    ("out_layers.0", "norm2"),
    ("out_layers.3", "conv2"),
    ("emb_layers.1", "time_emb_proj"),
    ("skip_connection", "conv_shortcut"),
]
_VAE_TOP = [
    ("nin_shortcut", "conv_shortcut"),
    ("norm_out", "conv_norm_out"),
    ("mid.attn_1.", "mid_block.attentions.0."),
]
_VAE_ATTN = [
    ("norm.", "group_norm."),
    ("q.", "to_q."),
    ("k.", "to_k."),
    ("v.", "to_v."),
    ("proj_out.", "to_out.0."),
]


def _unet_prefixes(unet_config: dict[str, Any]) -> list[tuple[str, str]]:
    """(original, diffusers) prefix pairs of the UNet blocks for ``unet_config``."""
    n = len(unet_config["block_out_channels"])
    layers = int(unet_config["layers_per_block"])
    down_types = list(unet_config["down_block_types"])
    up_types = list(unet_config["up_block_types"])
    pairs = []
    for i in range(n):
        for j in range(layers):
            pairs.append((f"input_blocks.{(layers + 1) * i + j + 1}.0.",
                          f"down_blocks.{i}.resnets.{j}."))
            if "CrossAttn" in down_types[i]:
                pairs.append((f"input_blocks.{(layers + 1) * i + j + 1}.1.",
                              f"down_blocks.{i}.attentions.{j}."))
        for j in range(layers + 1):
            pairs.append((f"output_blocks.{(layers + 1) * i + j}.0.",
                          f"up_blocks.{i}.resnets.{j}."))
            if "CrossAttn" in up_types[i]:
                pairs.append((f"output_blocks.{(layers + 1) * i + j}.1.",
                              f"up_blocks.{i}.attentions.{j}."))
        if i < n - 1:
            pairs.append((f"input_blocks.{(layers + 1) * (i + 1)}.0.op.",
                          f"down_blocks.{i}.downsamplers.0.conv."))
            slot = 2 if "CrossAttn" in up_types[i] else 1
            pairs.append((f"output_blocks.{(layers + 1) * i + layers}.{slot}.",
                          f"up_blocks.{i}.upsamplers.0."))
    pairs.append(("middle_block.1.", "mid_block.attentions.0."))
    for j in range(2):
        pairs.append((f"middle_block.{2 * j}.", f"mid_block.resnets.{j}."))
    return pairs


def unet_to_original(state: dict[str, Any], unet_config: dict[str, Any]) -> dict[str, Any]:
    """Rename a diffusers UNet state dict to the LDM layout (prefix ``model.diffusion_model.``)."""
    prefixes = _unet_prefixes(unet_config)
    out = {}
    for name, tensor in state.items():
        new = name
        for orig, hf in _UNET_TOP:
            if new.startswith(hf):
                new = orig + new[len(hf):]
        if "resnets" in name:
            for orig, hf in _UNET_RESNET:
                new = new.replace(hf, orig)
        for orig, hf in prefixes:
            if new.startswith(hf):
                new = orig + new[len(hf):]
                break
        out["model.diffusion_model." + new] = tensor
    return out


def vae_to_original(state: dict[str, Any], vae_config: dict[str, Any]) -> dict[str, Any]:
    """Rename a diffusers ``AutoencoderKL`` state dict to the LDM layout
    (prefix ``first_stage_model.``); attention linears become 1x1 convolutions."""
    n = len(vae_config["block_out_channels"])
    layers = int(vae_config.get("layers_per_block", 1))
    pairs = []
    for i in range(n):
        for j in range(layers):
            pairs.append((f"encoder.down.{i}.block.{j}.", f"encoder.down_blocks.{i}.resnets.{j}."))
        for j in range(layers + 1):
            pairs.append((f"decoder.up.{n - 1 - i}.block.{j}.",
                          f"decoder.up_blocks.{i}.resnets.{j}."))
        if i < n - 1:
            pairs.append((f"encoder.down.{i}.downsample.",
                          f"encoder.down_blocks.{i}.downsamplers.0."))
            pairs.append((f"decoder.up.{n - 1 - i}.upsample.",
                          f"decoder.up_blocks.{i}.upsamplers.0."))
    for j in range(2):
        pairs.append((f"encoder.mid.block_{j + 1}.", f"encoder.mid_block.resnets.{j}."))
        pairs.append((f"decoder.mid.block_{j + 1}.", f"decoder.mid_block.resnets.{j}."))
    out = {}
    for name, tensor in state.items():
        new = name
        for orig, hf in pairs:
            if new.startswith(hf):
                new = orig + new[len(hf):]
                break
        for orig, hf in _VAE_TOP:
            new = new.replace(hf, orig)
        if ".attn_1." in new:
            for orig, hf in _VAE_ATTN:
                new = new.replace(".attn_1." + hf, ".attn_1." + orig)
            if new.endswith(("q.weight", "k.weight", "v.weight", "proj_out.weight")) \
                    and tensor.ndim == 2:
                tensor = tensor.reshape(*tensor.shape, 1, 1)
        out["first_stage_model." + new] = tensor
    return out


def pipeline_to_original(pipe: Any) -> dict[str, Any]:
    """One state dict in the original SD 1.x single-file layout for a diffusers
    ``StableDiffusionPipeline`` (UNet, VAE and CLIP text encoder)."""
    out = unet_to_original(pipe.unet.state_dict(), dict(pipe.unet.config))
    out.update(vae_to_original(pipe.vae.state_dict(), dict(pipe.vae.config)))
    for name, tensor in pipe.text_encoder.state_dict().items():
        # transformers 5 names CLIPTextModel tensors without the "text_model." prefix that
        # SD 1.x checkpoints (and diffusers' converter) use.
        if not name.startswith("text_model."):
            name = "text_model." + name
        out["cond_stage_model.transformer." + name] = tensor
    return out


def save_single_file(pipe: Any, path: Path | str) -> Path:
    """Save ``pipe`` as one ``.safetensors`` checkpoint in the original layout (atomically).

    The tokenizer and scheduler are not in the file: a loader takes them from a config folder
    (``from_single_file(path, config=<diffusers folder>)``), as for any A1111 checkpoint.
    """
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous() for k, v in pipeline_to_original(pipe).items()}
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        save_file(tensors, str(tmp), metadata={"format": "pt"})
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
