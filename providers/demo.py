"""A tiny Stable Diffusion pipeline and LoRAs for it, built from config with random weights.

Nothing here downloads anything: every component is built from Python objects, as measured in
docs/offline-models.md#the-tiny-pipeline and docs/offline-models.md#loras-on-the-tiny-pipeline. The
pipeline produces noise-like pictures, but it runs the real diffusers code path (text encoder,
UNet, scheduler, VAE, LoRA adapters) in well under a second per 64x64 image on a CPU, which is
what the demo profile and the test suite need.

torch, diffusers, transformers and peft are imported inside the functions, never at module import.
Every file and folder is written atomically: built next to its destination under a temporary name,
then moved into place with :func:`os.replace`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

#: UNet configuration of the demo pipeline (docs/offline-models.md#the-tiny-pipeline).
#: ``sample_size`` is in latents (x8 pixels); 64x64 images use 32x32 latents.
DEMO_UNET_CONFIG: dict[str, Any] = {
    "block_out_channels": (32, 64),
    "layers_per_block": 2,
    "sample_size": 32,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
    "cross_attention_dim": 32,
}

#: A UNet of "another architecture": same block layout, twice the widths and a 64-wide text
#: embedding, so a LoRA trained on it has the demo's keys but none of its shapes.
MISMATCHED_UNET_CONFIG: dict[str, Any] = {
    **DEMO_UNET_CONFIG,
    "block_out_channels": (64, 128),
    "cross_attention_dim": 64,
}

#: Modules the demo LoRAs adapt (attention projections of the UNet).
LORA_TARGET_MODULES = ["to_q", "to_k", "to_v", "to_out.0"]

#: Rank and alpha of the demo LoRAs.
LORA_RANK = 4


# ----------------------------------------------------------------------------- helpers
def _bytes_to_unicode() -> dict[int, str]:
    """CLIP's (and GPT-2's) reversible map from the 256 byte values to printable characters."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def _byte_level_vocab() -> dict[str, int]:
    """514 tokens: the 256 byte characters, the same with ``</w>``, then BOS and EOS.

    With no merges this vocabulary tokenizes any text (one token per byte), which is all the tiny
    text encoder needs (docs/offline-models.md#tokenizer-without-files).
    """
    chars = list(_bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    return {tok: i for i, tok in enumerate(tokens)}


def build_demo_tokenizer():
    """A ``transformers.CLIPTokenizer`` built from Python objects (no files, no hub).

    Returns:
        CLIPTokenizer with a 514-entry byte-level vocabulary, no merges, ``model_max_length=77``.
    """
    from transformers import CLIPTokenizer

    merges: list[tuple[str, str]] = []  # transformers 5 wants tuples here, never strings
    return CLIPTokenizer(vocab=_byte_level_vocab(), merges=merges, model_max_length=77)


def _tmp_sibling(path: Path, *, directory: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        return Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    os.close(fd)
    return Path(name)


def _replace_dir(tmp: Path, path: Path) -> None:
    """Move the finished folder ``tmp`` to ``path``; an existing ``path`` is swapped out first."""
    if path.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
        os.replace(path, old / path.name)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)


def _unet(config: dict[str, Any]):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(**config)


# ----------------------------------------------------------------------------- the model
def build_demo_pipeline():
    """Build the tiny ``StableDiffusionPipeline`` in memory (random weights, deterministic).

    The weights come from ``torch.manual_seed(0)`` inside :func:`torch.random.fork_rng`, so two
    builds are identical and the caller's global RNG state is left untouched.
    Measured (docs/offline-models.md#the-tiny-pipeline): about 0.04 s on a 2-core CPU.
    """
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline
    from transformers import CLIPTextConfig, CLIPTextModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        unet = _unet(DEMO_UNET_CONFIG)
        vae = AutoencoderKL(
            block_out_channels=(32, 64),
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
            up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
            latent_channels=4,
            sample_size=64,
        )
        tokenizer = build_demo_tokenizer()
        text_config = CLIPTextConfig(
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=5,
            max_position_embeddings=77,
            projection_dim=32,
            vocab_size=len(tokenizer),
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        text_encoder = CLIPTextModel(text_config)
        scheduler = EulerDiscreteScheduler(
            beta_start=0.00085,
            beta_end=0.012,
            beta_schedule="scaled_linear",
            num_train_timesteps=1000,
            timestep_spacing="leading",
            steps_offset=1,
        )
        return StableDiffusionPipeline(
            vae=vae,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            unet=unet,
            scheduler=scheduler,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )


def build_demo_model(path: Path) -> Path:
    """Build the tiny pipeline and save it as a diffusers folder at ``path`` (about 8 MB).

    The folder is written under a temporary sibling name and moved into place, so ``path`` is
    either absent or complete. An existing ``path`` is replaced.

    Args:
        path: destination folder (its parent is created if needed).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    return save_pipeline_folder(build_demo_pipeline(), path)


def save_pipeline_folder(pipe: Any, path: Path) -> Path:
    """Save ``pipe`` as a diffusers folder (safetensors) at ``path``, atomically: written under
    a temporary sibling name, then moved into place (an existing ``path`` is replaced).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    tmp = _tmp_sibling(path, directory=True)
    try:
        pipe.save_pretrained(str(tmp), safe_serialization=True)
        _replace_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


# ----------------------------------------------------------------------------- LoRAs
def _save_kohya_lora(unet, path: Path, *, base_model_tag: str) -> Path:
    """Save the peft LoRA weights of ``unet`` as a kohya-ss .safetensors file (fp16)."""
    import torch
    from diffusers.utils import convert_state_dict_to_kohya
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file

    peft_sd = get_peft_model_state_dict(unet)
    # convert_state_dict_to_kohya maps "unet.<module>.lora_A.weight" to
    # "lora_unet_<module>.lora_down.weight" and adds "<...>.alpha" = rank.
    kohya_sd = convert_state_dict_to_kohya({f"unet.{k}": v for k, v in peft_sd.items()})
    tensors = {
        k: (v.to(torch.float16) if v.is_floating_point() else v).contiguous()
        for k, v in kohya_sd.items()
    }
    metadata = {
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(LORA_RANK),
        "ss_network_alpha": str(LORA_RANK),
        "ss_base_model_version": str(base_model_tag),
        "ss_output_name": path.stem,
    }
    tmp = _tmp_sibling(path, directory=False)
    try:
        save_file(tensors, str(tmp), metadata=metadata)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _build_lora(path: Path, *, seed: int, unet_config: dict[str, Any], base_model_tag: str) -> Path:
    import torch
    from peft import LoraConfig

    path = Path(path)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = _unet(unet_config)
        # init_lora_weights=False: B is random too (the default init leaves B = 0 and the LoRA
        # would change nothing; docs/offline-models.md#loras-on-the-tiny-pipeline).
        unet.add_adapter(
            LoraConfig(
                r=LORA_RANK,
                lora_alpha=LORA_RANK,
                init_lora_weights=False,
                target_modules=LORA_TARGET_MODULES,
            )
        )
    return _save_kohya_lora(unet, path, base_model_tag=base_model_tag)


def build_demo_lora(
    path: Path, *, seed: int, cross_attention_dim: int = 32, base_model_tag: str = "sd_v1"
) -> Path:
    """Write a kohya-format LoRA (rank 4, alpha 4, about 70 KB) for the demo pipeline's UNet.

    Args:
        path: destination ``.safetensors`` file (written atomically).
        seed: seeds the random LoRA weights; different seeds give LoRAs with different effects,
            the same seed gives the same file.
        cross_attention_dim: text-embedding width the LoRA is made for; 32 fits the demo model,
            anything else makes a LoRA whose attention shapes do not fit it.
        base_model_tag: written to ``ss_base_model_version`` (e.g. ``"sd_v1"``).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    config = {**DEMO_UNET_CONFIG, "cross_attention_dim": int(cross_attention_dim)}
    return _build_lora(path, seed=seed, unet_config=config, base_model_tag=base_model_tag)


def build_mismatched_lora(path: Path, *, seed: int = 0, base_model_tag: str = "sd_v1") -> Path:
    """Write a LoRA for "another architecture": the demo's key names, none of its shapes.

    It is made on :data:`MISMATCHED_UNET_CONFIG` (channels (64, 128), cross-attention 64), so
    ``pipe.load_lora_weights`` on the demo pipeline raises ``RuntimeError: ... size mismatch``.
    """
    return _build_lora(
        path, seed=seed, unet_config=MISMATCHED_UNET_CONFIG, base_model_tag=base_model_tag
    )
