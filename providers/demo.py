"""A tiny Stable Diffusion pipeline and LoRAs for it, built from config with random weights.

Nothing here downloads anything: every component is built from Python objects, as measured in
docs/offline-models.md#the-tiny-pipeline and docs/offline-models.md#loras-on-the-tiny-pipeline. The
pipeline produces noise-like pictures, but it runs the real diffusers code path (text encoder,
UNet, scheduler, VAE, LoRA adapters) in well under a second per 64x64 image on a CPU, which is
what the demo profile and the test suite need.

The demo folder and its LoRAs are written with numpy and safetensors alone, from a recorded
layout (``demo_layout.json``), so ``make run`` builds them in under a second without importing
torch (docs/first-run.md#the-demo-model-without-imports); the in-memory pipeline and the other
LoRAs use the real classes. torch, diffusers, transformers and peft are imported inside the
functions, never at module import.
Every file and folder is written atomically: built next to its destination under a temporary name,
then moved into place with :func:`os.replace`.
"""

from __future__ import annotations

import os
import re
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
def build_pipeline_from_classes():
    """The tiny ``StableDiffusionPipeline`` made from the diffusers and transformers classes
    (random weights from ``torch.manual_seed(0)`` inside :func:`torch.random.fork_rng`).

    This is the reference the file layout of :func:`build_demo_model` is recorded from
    (:func:`record_demo_layout`); the demo itself is written without these imports.
    Measured (docs/offline-models.md#the-tiny-pipeline): about 0.04 s once they are imported.
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
    """Write the tiny pipeline as a diffusers folder at ``path`` (about 8.6 MB), fast.

    The files are written with numpy and safetensors alone, from the recorded layout
    (``providers/demo_layout.json``: each component's config and its tensors' names and shapes,
    as diffusers and transformers save them): no torch, diffusers or transformers import, so a
    first ``make run`` builds it in well under a second instead of paying seconds of imports
    (docs/first-run.md#the-demo-model-without-imports). Weights are drawn from fixed seeds with
    the classes' default initialisation ranges, so two builds are byte-identical.

    The folder is written under a temporary sibling name and moved into place, so ``path`` is
    either absent or complete. An existing ``path`` is replaced.

    Args:
        path: destination folder (its parent is created if needed).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    tmp = _tmp_sibling(path, directory=True)
    try:
        _write_demo_folder(tmp)
        _replace_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def build_demo_pipeline():
    """The tiny ``StableDiffusionPipeline`` in memory: the folder :func:`build_demo_model`
    writes, loaded back (same weights, so a pipeline built here and one loaded from a demo
    folder give the same pictures). Imports diffusers.
    """
    from diffusers import StableDiffusionPipeline

    with tempfile.TemporaryDirectory(prefix="demo-sd-tiny-") as tmp:
        folder = _write_demo_folder(Path(tmp) / "demo-sd-tiny")
        return StableDiffusionPipeline.from_pretrained(str(folder), local_files_only=True)


# ----------------------------------------------------------------------------- the files
#: Config and tensor layout of each component, recorded by :func:`record_demo_layout`.
LAYOUT_FILE = Path(__file__).with_name("demo_layout.json")
#: Weight files of the diffusers folder, per component.
_WEIGHT_FILES = {"unet": "diffusion_pytorch_model.safetensors",
                 "vae": "diffusion_pytorch_model.safetensors",
                 "text_encoder": "model.safetensors"}
#: Seeds of the components' weights (any fixed values; changing one changes the demo pictures).
_SEEDS = {"unet": 0, "vae": 1, "text_encoder": 2}


def demo_layout() -> dict[str, Any]:
    """The recorded layout: ``{"model_index": {...}, "<component>": {"config": {...},
    "tensors": {name: "d0,d1,..."}}}`` (tensors only for unet, vae, text_encoder)."""
    import json

    return json.loads(LAYOUT_FILE.read_text(encoding="utf-8"))


def _init_tensors(tensors: dict[str, str], seed: int) -> dict[str, Any]:
    """float32 arrays for ``{name: "d0,d1,..."}`` (drawn in name order), with the default
    initialisation ranges of the layers they belong to: a 1-D ``weight`` is a norm's scale
    (ones) and its ``bias`` zeros; an ``*_embedding.weight`` is N(0, 0.02) as in CLIP; any
    other weight or bias is U(-1/sqrt(fan_in), 1/sqrt(fan_in)), torch's default for Linear
    and Conv layers."""
    import numpy as np

    rng = np.random.default_rng(seed)
    shapes = {name: tuple(int(d) for d in dims.split(",") if d) for name, dims in tensors.items()}
    out = {}
    for name, shape in sorted(shapes.items()):
        stem, _, kind = name.rpartition(".")
        weight_shape = shapes.get(f"{stem}.weight", shape)
        if len(weight_shape) == 1:  # a norm layer
            out[name] = np.full(shape, 1.0 if kind == "weight" else 0.0, dtype=np.float32)
        elif name.endswith("_embedding.weight"):
            out[name] = rng.normal(0.0, 0.02, shape).astype(np.float32)
        else:
            fan_in = int(np.prod(weight_shape[1:]))
            bound = 1.0 / fan_in ** 0.5
            out[name] = rng.uniform(-bound, bound, shape).astype(np.float32)
    return out


def _write_json(path: Path, data: Any) -> None:
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _write_demo_folder(folder: Path) -> Path:
    """Write the demo's diffusers folder into ``folder`` (created; existing files overwritten):
    model_index.json, each component's config, its safetensors weights, and the tokenizer as
    the hub's CLIP folders have it (vocab.json, merges.txt, tokenizer_config.json)."""
    from safetensors.numpy import save_file

    layout = demo_layout()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _write_json(folder / "model_index.json", layout["model_index"])
    _write_json(folder / "scheduler" / "scheduler_config.json", layout["scheduler"]["config"])
    for component, filename in _WEIGHT_FILES.items():
        spec = layout[component]
        config_name = "config.json"
        _write_json(folder / component / config_name, spec["config"])
        tensors = _init_tensors(spec["tensors"], _SEEDS[component])
        save_file(tensors, str(folder / component / filename), metadata={"format": "pt"})
    tok = folder / "tokenizer"
    _write_json(tok / "vocab.json", _byte_level_vocab())
    (tok / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    _write_json(tok / "tokenizer_config.json", layout["tokenizer"]["config"])
    _write_json(tok / "special_tokens_map.json", {
        k: layout["tokenizer"]["config"][k]
        for k in ("bos_token", "eos_token", "pad_token", "unk_token")})
    return folder


def record_demo_layout() -> dict[str, Any]:
    """Build :func:`build_pipeline_from_classes`, save it, and return its layout in the shape
    of :func:`demo_layout` (``python -m providers.demo`` writes it to :data:`LAYOUT_FILE`).

    The text encoder's tensor names are given the ``text_model.`` prefix every CLIP text
    encoder on the hub has (transformers 5 saves them without it and loads both), and the
    tokenizer as ``vocab.json`` + ``merges.txt`` with the settings of
    :func:`build_demo_tokenizer`.
    """
    import json

    from safetensors import safe_open

    pipe = build_pipeline_from_classes()
    tokenizer = pipe.tokenizer
    with tempfile.TemporaryDirectory() as tmp:
        pipe.save_pretrained(tmp, safe_serialization=True)
        root = Path(tmp)
        layout: dict[str, Any] = {
            "model_index": json.loads((root / "model_index.json").read_text()),
            "scheduler": {"config": json.loads(
                (root / "scheduler" / "scheduler_config.json").read_text())},
        }
        for component, filename in _WEIGHT_FILES.items():
            with safe_open(str(root / component / filename), "np") as fh:
                tensors = {name: ",".join(str(d) for d in fh.get_slice(name).get_shape())
                           for name in fh.keys()}
            if component == "text_encoder":
                tensors = {n if n.startswith("text_model.") else f"text_model.{n}": dims
                           for n, dims in tensors.items()}
            layout[component] = {
                "config": json.loads((root / component / "config.json").read_text()),
                "tensors": tensors,
            }
    layout["tokenizer"] = {"config": {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": tokenizer.model_max_length,
        "bos_token": tokenizer.bos_token, "eos_token": tokenizer.eos_token,
        "pad_token": tokenizer.pad_token, "unk_token": tokenizer.unk_token,
    }}
    return layout


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
def _lora_metadata(path: Path, base_model_tag: str) -> dict[str, str]:
    return {
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(LORA_RANK),
        "ss_network_alpha": str(LORA_RANK),
        "ss_base_model_version": str(base_model_tag),
        "ss_output_name": path.stem,
    }


def _write_atomically(path: Path, write) -> Path:
    """Call ``write(tmp_path)`` on a temporary sibling of ``path``, then move it into place."""
    tmp = _tmp_sibling(path, directory=False)
    try:
        write(str(tmp))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


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
    metadata = _lora_metadata(path, base_model_tag)
    return _write_atomically(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


#: The UNet modules peft adapts for :data:`LORA_TARGET_MODULES`, as weight-name patterns.
_LORA_TARGET = re.compile(r"^(.+\.(?:to_q|to_k|to_v|to_out\.0))\.weight$")


def _write_demo_lora_fast(path: Path, *, seed: int, base_model_tag: str) -> Path:
    """The demo UNet's kohya LoRA written with numpy from the recorded layout (no torch): the
    keys and shapes :func:`_save_kohya_lora` writes for peft's ``LoraConfig(r=4,
    lora_alpha=4, target_modules=LORA_TARGET_MODULES, init_lora_weights=False)``, with its
    ranges: ``lora_down`` U(±1/sqrt(in)), ``lora_up`` U(±1/sqrt(rank)), both fp16, and an
    int64 ``alpha`` = rank."""
    import numpy as np
    from safetensors.numpy import save_file

    rng = np.random.default_rng(1000 + int(seed))
    tensors = {}
    for name, dims in sorted(demo_layout()["unet"]["tensors"].items()):
        match = _LORA_TARGET.match(name)
        if not match:
            continue
        out_features, in_features = (int(d) for d in dims.split(","))
        key = "lora_unet_" + match.group(1).replace(".", "_")
        tensors[f"{key}.alpha"] = np.array(LORA_RANK, dtype=np.int64)
        tensors[f"{key}.lora_down.weight"] = rng.uniform(
            -(in_features ** -0.5), in_features ** -0.5, (LORA_RANK, in_features)
        ).astype(np.float16)
        tensors[f"{key}.lora_up.weight"] = rng.uniform(
            -(LORA_RANK ** -0.5), LORA_RANK ** -0.5, (out_features, LORA_RANK)
        ).astype(np.float16)
    metadata = _lora_metadata(path, base_model_tag)
    return _write_atomically(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


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
    if int(cross_attention_dim) == DEMO_UNET_CONFIG["cross_attention_dim"]:
        return _write_demo_lora_fast(Path(path), seed=seed, base_model_tag=base_model_tag)
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


if __name__ == "__main__":  # python -m providers.demo: record the layout again
    _write_json(LAYOUT_FILE, record_demo_layout())
    print(f"wrote {LAYOUT_FILE}")
