"""Tiny upscale pipelines built from config with random weights: ``StableDiffusionUpscalePipeline``
(x4) and ``StableDiffusionLatentUpscalePipeline`` (x2).

Like :mod:`providers.demo` (the tiny txt2img pipeline), nothing is downloaded: every component is
made from Python objects. The sizes follow diffusers' own tests of these pipelines
(``tests/pipelines/stable_diffusion_2/test_stable_diffusion_upscale.py`` and
``test_stable_diffusion_latent_upscale.py``). The x4 one has a UNet taking 7 input channels
(4 latent + 3 low-resolution image channels) with noise-level class embeddings and a VAE with
three blocks, so decoding enlarges the latents 4x. The output is noise-like, but the real upscale
code paths run in about a second for a 32x32 (x4) or 64x64 (x2) source on a CPU.

torch, diffusers and transformers are imported inside the functions, never at module import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .demo import build_demo_tokenizer, save_pipeline_folder

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


def _tiny_text_encoder(tokenizer: Any, *, hidden_act: str) -> Any:
    """A 5-layer, 32-wide CLIP text encoder for ``tokenizer`` (random weights), as in diffusers'
    own tests of the upscale pipelines; ``hidden_act`` is ``gelu`` (x4) or ``quick_gelu`` (x2)."""
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(CLIPTextConfig(
        hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=5,
        max_position_embeddings=77, projection_dim=512, hidden_act=hidden_act,
        vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    ))


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
        text_encoder = _tiny_text_encoder(tokenizer, hidden_act="gelu")
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
    return save_pipeline_folder(build_demo_upscale_pipeline(), path)


#: UNet of the tiny x2 latent upscaler (diffusers' ``dummy_unet`` of its latent-upscale test):
#: 8 input channels (noisy latents + the source latents), K-diffusion blocks, Fourier timesteps.
LATENT_UPSCALE_UNET_CONFIG: dict[str, Any] = {
    "act_fn": "gelu",
    "attention_head_dim": 8,
    "norm_num_groups": None,
    "block_out_channels": (32, 32, 64, 64),
    "time_cond_proj_dim": 160,
    "conv_in_kernel": 1,
    "conv_out_kernel": 1,
    "cross_attention_dim": 32,
    "down_block_types": ("KDownBlock2D",) + ("KCrossAttnDownBlock2D",) * 3,
    "in_channels": 8,
    "mid_block_type": None,
    "only_cross_attention": False,
    "out_channels": 5,
    "resnet_time_scale_shift": "scale_shift",
    "time_embedding_type": "fourier",
    "timestep_post_act": "gelu",
    "up_block_types": ("KCrossAttnUpBlock2D",) * 3 + ("KUpBlock2D",),
}


def build_demo_latent_upscale_pipeline():
    """Build the tiny x2 ``StableDiffusionLatentUpscalePipeline`` in memory (random weights
    from ``torch.manual_seed(0)`` in :func:`torch.random.fork_rng`; deterministic)."""
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionLatentUpscalePipeline,
        UNet2DConditionModel,
    )

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        unet = UNet2DConditionModel(**LATENT_UPSCALE_UNET_CONFIG)
        vae = AutoencoderKL(
            block_out_channels=(32, 32, 64, 64),
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            latent_channels=4,
        )
        tokenizer = build_demo_tokenizer()
        text_encoder = _tiny_text_encoder(tokenizer, hidden_act="quick_gelu")
        return StableDiffusionLatentUpscalePipeline(
            vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
            scheduler=EulerDiscreteScheduler(prediction_type="sample"),
        )


def build_demo_latent_upscale_model(path: Path) -> Path:
    """Save the tiny x2 latent upscaler as a diffusers folder at ``path`` (about 9 MB),
    atomically like :func:`build_demo_upscale_model`."""
    return save_pipeline_folder(build_demo_latent_upscale_pipeline(), path)
