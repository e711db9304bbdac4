"""A tiny ``StableDiffusionUpscalePipeline`` (x4) built from config with random weights.

Like :mod:`providers.demo` (the tiny txt2img pipeline), nothing is downloaded: every component is
made from Python objects. The sizes follow diffusers' own test of this pipeline
(``tests/pipelines/stable_diffusion_2/test_stable_diffusion_upscale.py``, ``dummy_cond_unet_upscale``
and ``dummy_vae``): a UNet taking 7 input channels (4 latent + 3 low-resolution image channels)
with noise-level class embeddings, and a VAE with three blocks, so decoding enlarges the latents
4x. The output is noise-like, but it runs the real upscale code path in well under a second for a
32x32 source on a CPU.

torch, diffusers and transformers are imported inside the functions, never at module import.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from .demo import _replace_dir, _tmp_sibling, build_demo_tokenizer

#: UNet of the tiny x4 upscaler: the noisy latents are concatenated with the RGB source
#: (``in_channels`` 4 + 3); the noise level added to the source is a class label (< 100 here).
UPSCALE_UNET_CONFIG: dict[str, Any] = {
    "block_out_channels": (32, 32, 64),
    "layers_per_block": 2,
    "sample_size": 32,
    "in_channels": 7,
    "out_channels": 4,
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    "cross_attention_dim": 32,
    "attention_head_dim": 8,
    "use_linear_projection": True,
    "only_cross_attention": (True, True, False),
    "num_class_embeds": 100,
}

#: ``max_noise_level`` of the tiny pipeline (the real x4 upscaler uses 350 with 1000 classes;
#: the noise level must stay below ``num_class_embeds``).
UPSCALE_MAX_NOISE_LEVEL = 90


def build_demo_upscale_pipeline():
    """Build the tiny x4 ``StableDiffusionUpscalePipeline`` in memory (random, deterministic).

    Weights come from ``torch.manual_seed(0)`` inside :func:`torch.random.fork_rng`, so two
    builds are identical and the caller's RNG state is untouched.
    """
    import torch
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        DDPMScheduler,
        StableDiffusionUpscalePipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        unet = UNet2DConditionModel(**UPSCALE_UNET_CONFIG)
        vae = AutoencoderKL(
            block_out_channels=(32, 32, 64),
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * 3,
            up_block_types=("UpDecoderBlock2D",) * 3,
            latent_channels=4,
            scaling_factor=0.08333,  # the x4 upscaler's VAE value (diffusers warns otherwise)
        )
        tokenizer = build_demo_tokenizer()
        text_encoder = CLIPTextModel(CLIPTextConfig(
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=5,
            max_position_embeddings=77,
            projection_dim=512,
            hidden_act="gelu",
            vocab_size=len(tokenizer),
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        ))
        return StableDiffusionUpscalePipeline(
            vae=vae,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            unet=unet,
            low_res_scheduler=DDPMScheduler(),
            scheduler=DDIMScheduler(prediction_type="v_prediction"),
            max_noise_level=UPSCALE_MAX_NOISE_LEVEL,
        )


def build_demo_upscale_model(path: Path) -> Path:
    """Build the tiny x4 upscaler and save it as a diffusers folder at ``path`` (a few MB),
    atomically (temporary sibling, then moved into place; an existing ``path`` is replaced)."""
    path = Path(path)
    pipe = build_demo_upscale_pipeline()
    tmp = _tmp_sibling(path, directory=True)
    try:
        pipe.save_pretrained(str(tmp), safe_serialization=True)
        _replace_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path
