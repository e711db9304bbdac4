"""Real-layout LoRA ``.safetensors`` files for tests and benchmarks (small ranks), and corrupt
ones.

Layouts (tensor names as the trainers write them):
- ``kohya`` (sd-scripts ``networks/lora.py``): ``lora_unet_<module_path_with_underscores>.
  lora_down.weight`` [rank, in], ``.lora_up.weight`` [out, rank], ``.alpha`` []; text encoders
  ``lora_te_`` (SD 1.x/2.x) or ``lora_te1_``/``lora_te2_`` (SDXL).
- ``peft`` (diffusers >= 0.24 / PEFT): ``unet.<module>.lora_A.weight`` / ``.lora_B.weight``,
  ``text_encoder.`` / ``text_encoder_2.``, ``transformer.`` for Flux.
- ``diffusers`` (older attention-processor format): ``unet.<module>.lora.down.weight`` /
  ``.lora.up.weight``.

Architectures: ``sd1`` (cross-attention width 768), ``sd2`` (1024), ``sdxl`` (2048 + a second
text encoder of width 1280), ``flux`` (BFL ``double_blocks``/``single_blocks`` for kohya,
``transformer_blocks``/``single_transformer_blocks`` for diffusers layouts).
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

# (unet-ish module path, in_features, out_features) per architecture; kohya names for Flux and
# SDXL follow sd-scripts (BFL block names; SGM input_blocks for the SDXL UNet).
UNET_MODULES = {
    "sd1": [("down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k", 768, 320),
            ("down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_v", 768, 320),
            ("down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q", 320, 320)],
    "sd2": [("down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k", 1024, 320),
            ("down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q", 320, 320)],
    "sdxl": [("down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k", 2048, 640),
             ("down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q", 640, 640)],
}
SDXL_KOHYA_UNET = [("input_blocks.4.1.transformer_blocks.0.attn2.to_k", 2048, 640),
                   ("input_blocks.4.1.transformer_blocks.0.attn1.to_q", 640, 640)]
FLUX_KOHYA = [("double_blocks.0.img_attn.qkv", 3072, 9216),
              ("single_blocks.0.linear1", 3072, 21504)]
FLUX_DIFFUSERS = [("transformer_blocks.0.attn.to_k", 3072, 3072),
                  ("single_transformer_blocks.0.proj_mlp", 3072, 12288)]
TEXT_ENCODERS = {  # prefix -> (module, width)
    "sd1": [("te", "text_encoder", 768)],
    "sd2": [("te", "text_encoder", 1024)],
    "sdxl": [("te1", "text_encoder", 768), ("te2", "text_encoder_2", 1280)],
    "flux": [],
}
TE_MODULE = "text_model.encoder.layers.0.self_attn.q_proj"

SS_BASE = {"sd1": "sd_v1", "sd2": "sd_v2", "sdxl": "sdxl_base_v1-0", "flux": "flux1"}
ARCHITECTURE = {"sd1": "stable-diffusion-v1/lora", "sd2": "stable-diffusion-v2-512/lora",
                "sdxl": "stable-diffusion-xl-v1-base/lora", "flux": "flux-1-dev/lora"}
EXPECTED_BASE = {"sd1": "SD 1.5", "sd2": "SD 2.1", "sdxl": "SDXL 1.0", "flux": "Flux.1 D"}


def lora_tensors(arch: str = "sd1", layout: str = "kohya", *, rank: int = 4,
                 seed: int = 0) -> dict[str, np.ndarray]:
    """The tensors of a LoRA for ``arch`` in ``layout`` (float16, random, rank ``rank``)."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}

    def pair(base: str, fin: int, fout: int, down: str, up: str) -> None:
        out[f"{base}{down}"] = rng.standard_normal((rank, fin), dtype=np.float32).astype(np.float16)
        out[f"{base}{up}"] = np.zeros((fout, rank), dtype=np.float16)

    if arch == "flux":
        unet = FLUX_KOHYA if layout == "kohya" else FLUX_DIFFUSERS
    elif arch == "sdxl" and layout == "kohya":
        unet = SDXL_KOHYA_UNET
    else:
        unet = UNET_MODULES[arch]
    if layout == "kohya":
        for module, fin, fout in unet:
            base = "lora_unet_" + module.replace(".", "_")
            pair(base, fin, fout, ".lora_down.weight", ".lora_up.weight")
            out[f"{base}.alpha"] = np.array(rank / 2, dtype=np.float16)
        for prefix, _, width in TEXT_ENCODERS[arch]:
            base = f"lora_{prefix}_" + TE_MODULE.replace(".", "_")
            pair(base, width, width, ".lora_down.weight", ".lora_up.weight")
            out[f"{base}.alpha"] = np.array(rank / 2, dtype=np.float16)
        return out
    down, up = ((".lora_A.weight", ".lora_B.weight") if layout == "peft"
                else (".lora.down.weight", ".lora.up.weight"))
    model = "transformer" if arch == "flux" else "unet"
    for module, fin, fout in unet:
        pair(f"{model}.{module}", fin, fout, down, up)
    for _, name, width in TEXT_ENCODERS[arch]:
        pair(f"{name}.{TE_MODULE}", width, width, down, up)
    return out


def kohya_metadata(arch: str = "sd1", *, rank: int = 4, name: str = "my_lora",
                   tags: dict[str, int] | None = None) -> dict[str, str]:
    """``__metadata__`` as sd-scripts writes it (all values strings)."""
    tags = tags if tags is not None else {"mychar": 40, "1girl": 38, "solo": 30, "smile": 12,
                                          "outdoors": 9, "hat": 3}
    return {
        "ss_v2": "False", "ss_base_model_version": SS_BASE[arch],
        "ss_network_module": "networks.lora_flux" if arch == "flux" else "networks.lora",
        "ss_network_dim": str(rank), "ss_network_alpha": str(rank / 2),
        "ss_network_args": "null", "ss_output_name": name,
        "ss_tag_frequency": json.dumps({"10_mychar": tags}),
        "ss_num_train_images": "40", "ss_learning_rate": "0.0001",
        "sshs_model_hash": "0" * 64,
    }


def modelspec_metadata(arch: str = "sd1", *, trigger: str = "", thumbnail: bool = True) -> dict:
    """SAI model spec keys (``modelspec.*``) as sd-scripts ``sai_model_spec.py`` writes them."""
    meta = {"modelspec.sai_model_spec": "1.0.1", "modelspec.architecture": ARCHITECTURE[arch],
            "modelspec.implementation": "https://github.com/Stability-AI/generative-models",
            "modelspec.title": "My LoRA", "modelspec.resolution": "1024x1024"}
    if trigger:
        meta["modelspec.trigger_phrase"] = trigger
    if thumbnail:
        meta["modelspec.thumbnail"] = "data:image/png;base64," + "A" * 50_000
    return meta


def write_lora(path, *, arch: str = "sd1", layout: str = "kohya", rank: int = 4,
               metadata: dict | None = None, seed: int = 0) -> Path:
    """Write a LoRA file at ``path`` (folders created); ``metadata`` None = no __metadata__."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(lora_tensors(arch, layout, rank=rank, seed=seed), str(path), metadata=metadata)
    return path


def write_raw_safetensors(path, header: bytes, data: bytes = b"", *, length: int | None = None
                          ) -> Path:
    """Write ``8-byte N`` + ``header`` + ``data``; ``length`` overrides N (to lie about it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(header) if length is None else length) + header + data)
    return path


def write_sized_lora(path, *, data_bytes: int, seed: int = 0) -> Path:
    """A valid LoRA-shaped file with ``data_bytes`` of random tensor data (for benchmarks):
    one kohya SD 1.x key whose down weight holds all the data (uint8)."""
    rng = np.random.default_rng(seed)
    header = {"__metadata__": {"ss_base_model_version": "sd_v1", "ss_network_dim": "4"},
              "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down."
              "weight": {"dtype": "U8", "shape": [data_bytes], "data_offsets": [0, data_bytes]}}
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(raw)) + raw)
        left = data_bytes
        while left:
            n = min(left, 4 * 1024 * 1024)
            fh.write(rng.bytes(n))
            left -= n
    return path


# Corrupt files: name -> a writer(path). Each must give a per-file scan error.
def _truncated(path):
    good = write_lora(path, metadata=kohya_metadata("sd1"))
    raw = good.read_bytes()
    good.write_bytes(raw[:40])  # cut inside the header
    return good


def _truncated_data(path):
    good = write_lora(path)
    raw = good.read_bytes()
    good.write_bytes(raw[:len(raw) - 1000])  # header intact, tensor data cut short
    return good


def _zero(path):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(b"")
    return Path(path)


CORRUPT = {
    "truncated": _truncated,
    "truncated_data": _truncated_data,
    "zero_byte": _zero,
    "huge_header_length": lambda p: write_raw_safetensors(p, b"{}", length=8 * 1024 ** 3),
    "not_json": lambda p: write_raw_safetensors(p, b"this is not json at all!"),
    "not_utf8": lambda p: write_raw_safetensors(
        p, b'{"__metadata__":{"ss_output_name":"caf\xe9"}}'),
    "not_object": lambda p: write_raw_safetensors(p, b"[1, 2, 3]"),
    "short": lambda p: (Path(p).parent.mkdir(parents=True, exist_ok=True),
                        Path(p).write_bytes(b"\x01\x02\x03"), Path(p))[-1],
}


def write_corrupt(path, kind: str) -> Path:
    """Write a corrupt ``.safetensors`` of ``kind`` (a key of ``CORRUPT``)."""
    os.makedirs(os.path.dirname(str(path)) or ".", exist_ok=True)
    return CORRUPT[kind](path)
