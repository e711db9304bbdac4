"""What a LoRA file says about itself: its safetensors header, and what we derive from it.

Facts (docs/protocols.md#safetensors; huggingface/safetensors format; kohya-ss/sd-scripts
``train_network.py``, ``library/sai_model_spec.py``):
- the first 8 bytes are N (unsigned 64-bit little-endian), then N bytes of UTF-8 JSON (an object,
  maybe space-padded), then the tensor bytes; ``data_offsets`` are relative to the tensor bytes;
- ``__metadata__`` maps strings to strings: kohya ``ss_*`` keys (``ss_base_model_version``,
  ``ss_network_module/dim/alpha``, ``ss_tag_frequency`` = JSON ``{dir: {tag: count}}``...) and
  SAI model spec ``modelspec.*`` keys (``modelspec.architecture`` like
  ``stable-diffusion-xl-v1-base/lora``, ``modelspec.trigger_phrase``, ``modelspec.thumbnail``).

Base model names are Civitai's ``baseModel`` values ("SD 1.5", "SD 2.1", "SDXL 1.0",
"Flux.1 D", ...; docs/protocols.md#civitai-base-models), so local guesses and Civitai's word are
comparable.
"""

from __future__ import annotations

import json
import os
import struct
from collections import Counter
from dataclasses import dataclass, field

META_KEY_PREFIXES = ("ss_", "sshs_", "modelspec.")
DROPPED_META_KEYS = {"modelspec.thumbnail"}  # a data URL, often hundreds of KB
META_MAX_BYTES = 256 * 1024  # total size of the stored header metadata (UTF-8 bytes)
TRIGGER_WORDS_FROM_TAGS = 5  # most frequent training tags kept as trigger words

# kohya ``ss_base_model_version`` -> Civitai baseModel (sd-scripts library/train_util.py).
SS_BASE_MODELS = {
    "sd_v1": "SD 1.5",
    "sd_v2": "SD 2.1", "sd_v2_v": "SD 2.1 768", "sd_v2_512": "SD 2.1", "sd_v2_768_v": "SD 2.1 768",
    "sdxl_base_v1-0": "SDXL 1.0",
    "flux1": "Flux.1 D",
    "sd3": "SD 3", "sd3.5": "SD 3.5",
    "lumina2": "Lumina",
    "chroma": "Chroma",
}
# SAI model spec architecture (the part before "/lora") -> Civitai baseModel
# (sd-scripts library/sai_model_spec.py).
ARCHITECTURES = {
    "stable-diffusion-v1": "SD 1.5",
    "stable-diffusion-v2-512": "SD 2.1", "stable-diffusion-v2-768-v": "SD 2.1 768",
    "stable-diffusion-xl-v1-base": "SDXL 1.0",
    "flux-1-dev": "Flux.1 D", "flux-1-schnell": "Flux.1 S", "flux-1": "Flux.1 D",
    "stable-diffusion-v3-medium": "SD 3", "stable-diffusion-v3.5-large": "SD 3.5 Large",
    "stable-diffusion-v3.5-medium": "SD 3.5 Medium",
    "lumina-2": "Lumina", "chroma": "Chroma",
}
# Cross-attention width (the text-embedding size a UNet's attn2.to_k/to_v read).
CROSS_ATTENTION_WIDTHS = {768: "SD 1.5", 1024: "SD 2.1", 2048: "SDXL 1.0"}
# Text-encoder hidden size when only text-encoder keys are present.
TEXT_ENCODER_WIDTHS = {768: "SD 1.5", 1024: "SD 2.1"}


class HeaderError(ValueError):
    """The file has no readable safetensors header; ``str(exc)`` says why."""


@dataclass
class LoraInfo:
    """What the header says: field values for ``LoraModel`` (empty / None when unknown).

    ``metadata`` holds the kept ``ss_*``, ``sshs_*`` and ``modelspec.*`` keys (strings, at most
    ``META_MAX_BYTES`` in total; dropped keys are listed under ``"_dropped"``).
    ``problem`` is a non-fatal defect (e.g. tensor data past the end of the file).
    """

    base_model: str = ""
    network_module: str = ""
    network_rank: int | None = None
    network_alpha: float | None = None
    trigger_words: list[str] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    tensor_count: int = 0
    problem: str = ""


def header_read(path: str, *, head: bytes = b"", max_bytes: int | None = None) -> dict:
    """The parsed JSON header of the safetensors file ``path``, reading only the header.

    Args:
        head: the file's first bytes when already read (e.g. by the hasher); the file is only
            opened when they do not cover 8 + N bytes.
        max_bytes: the largest N accepted (default ``settings.LORA_HEADER_MAX_BYTES``).

    Raises:
        HeaderError: file shorter than 8 bytes, N over ``max_bytes`` or past the end of the file,
            header not UTF-8, not JSON, or not a JSON object (or ``__metadata__`` not one).
        OSError: the file cannot be read.
    """
    if max_bytes is None:
        from django.conf import settings

        max_bytes = int(settings.LORA_HEADER_MAX_BYTES)
    if len(head) >= 8:
        size = None
        n = struct.unpack_from("<Q", head, 0)[0]
    else:
        size = os.path.getsize(path)
        if size < 8:
            raise HeaderError(f"Not a safetensors file: {size} bytes, shorter than the "
                              "8-byte header length.")
        with open(path, "rb") as fh:
            head = fh.read(8)
        n = struct.unpack_from("<Q", head, 0)[0]
    if n > max_bytes:
        raise HeaderError(f"Header length {n} bytes is over the {max_bytes}-byte limit.")
    if len(head) >= 8 + n:
        raw = head[8:8 + n]
    else:
        with open(path, "rb") as fh:
            fh.seek(8)
            raw = fh.read(n)
    if len(raw) < n:
        raise HeaderError(f"Truncated header: {n} bytes announced, {len(raw)} in the file.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HeaderError(f"Header is not valid UTF-8 (byte {exc.start}).") from None
    try:
        header = json.loads(text)
    except ValueError as exc:
        raise HeaderError(f"Header is not valid JSON: {exc}.") from None
    if not isinstance(header, dict):
        raise HeaderError(f"Header is a JSON {type(header).__name__}, not an object.")
    if not isinstance(header.get("__metadata__", {}), dict):
        raise HeaderError("Header __metadata__ is not a JSON object.")
    return header


def base_model_from_metadata(meta: dict) -> str:
    """Civitai base model name from ``ss_base_model_version`` or ``modelspec.architecture``;
    unknown values pass through as written; '' when neither key is there."""
    version = str(meta.get("ss_base_model_version") or "").strip()
    if version:
        return SS_BASE_MODELS.get(version, version)
    arch = str(meta.get("modelspec.architecture") or "").strip()
    if arch:
        family = arch.split("/")[0]
        return ARCHITECTURES.get(family, family)
    return ""


def _down_weights(tensors: dict):
    """(key, shape) of the LoRA down-projection tensors of every layout."""
    for key, spec in tensors.items():
        if (key.endswith(("lora_down.weight", ".lora_A.weight", ".lora.down.weight",
                          "_lora.down.weight", ".lora_A.default.weight"))
                and isinstance(spec, dict) and isinstance(spec.get("shape"), list)):
            yield key, spec["shape"]


def base_model_from_tensors(tensors: dict) -> str:
    """Guess the base model from tensor key names and shapes ('' when unsure).

    Flux: ``double_blocks``/``single_blocks`` (BFL/kohya) or ``single_transformer_blocks`` /
    a ``transformer.`` DiT prefix (diffusers). SDXL: a second text encoder (``lora_te2_``,
    ``text_encoder_2``) or cross-attention width 2048. SD 1.x / 2.x: cross-attention width
    768 / 1024 (the ``in_features`` of ``attn2.to_k``/``to_v``), else the text-encoder width.
    """
    keys = list(tensors)
    if any("double_blocks" in k or "single_blocks" in k or "single_transformer_blocks" in k
           for k in keys):
        return "Flux.1 D"
    if any(k.startswith(("transformer.", "lora_transformer_")) and "transformer_blocks" in k
           for k in keys):
        return "Flux.1 D"
    if any("lora_te2_" in k or "text_encoder_2" in k for k in keys):
        return "SDXL 1.0"
    te_width = None
    for key, shape in _down_weights(tensors):
        if len(shape) < 2:
            continue
        if "attn2" in key and ("to_k" in key or "to_v" in key):
            guess = CROSS_ATTENTION_WIDTHS.get(int(shape[1]))
            if guess:
                return guess
        if te_width is None and ("lora_te" in key or "text_encoder" in key
                                 or "text_model" in key):
            te_width = int(shape[1])
    return TEXT_ENCODER_WIDTHS.get(te_width, "")


def network_from_tensors(tensors: dict) -> tuple[str, int | None]:
    """(network module, rank) from key names and the down-projection shapes.

    Module names: kohya ``lora_down`` -> ``networks.lora``; PEFT ``lora_A`` -> ``peft.lora``;
    old diffusers ``lora.down`` -> ``diffusers.lora``; LyCORIS ``hada_`` -> ``lycoris.loha``,
    ``lokr_`` -> ``lycoris.lokr``. Rank = rows of the first down projection.
    """
    keys = list(tensors)
    module = ""
    if any(".hada_w1_a" in k for k in keys):
        module = "lycoris.loha"
    elif any(".lokr_w1" in k for k in keys):
        module = "lycoris.lokr"
    rank = None
    for key, shape in _down_weights(tensors):
        if shape:
            rank = int(shape[0])
        if not module:
            module = ("networks.lora" if "lora_down" in key else
                      "peft.lora" if "lora_A" in key else "diffusers.lora")
        break
    return module, rank


def trigger_words_from_metadata(meta: dict, *, limit: int = TRIGGER_WORDS_FROM_TAGS) -> list[str]:
    """The ``limit`` most frequent tags of ``ss_tag_frequency`` (counts summed over dataset
    folders, ties by name), else ``modelspec.trigger_phrase`` split on commas; [] if none."""
    raw = meta.get("ss_tag_frequency")
    if raw:
        try:
            freq = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            freq = None
        counts: Counter = Counter()
        if isinstance(freq, dict):
            for tags in freq.values():
                if isinstance(tags, dict):
                    for tag, count in tags.items():
                        tag = str(tag).strip()
                        if tag and isinstance(count, (int, float)):
                            counts[tag] += count
        if counts:
            ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
            return [tag for tag, _ in ranked[:limit]]
    phrase = str(meta.get("modelspec.trigger_phrase") or "")
    return [p.strip() for p in phrase.split(",") if p.strip()]


def _clean(value) -> str:
    """A string safe for any JSON column: no lone surrogates, no NUL (PostgreSQL jsonb)."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")


def metadata_keep(meta: dict, *, max_bytes: int = META_MAX_BYTES) -> dict:
    """The ``ss_*``, ``sshs_*`` and ``modelspec.*`` keys of ``meta`` as strings, smallest first
    until ``max_bytes`` (UTF-8) is reached; ``modelspec.thumbnail`` is dropped. Keys left out
    for size are listed in ``"_dropped"``."""
    items = [(_clean(k), _clean(v)) for k, v in meta.items()
             if isinstance(k, str) and k.startswith(META_KEY_PREFIXES)
             and k not in DROPPED_META_KEYS]
    items.sort(key=lambda kv: len(kv[0]) + len(kv[1].encode("utf-8")))
    kept, dropped, total = {}, [], 0
    for key, value in items:
        cost = len(key) + len(value.encode("utf-8"))
        if total + cost > max_bytes:
            dropped.append(key)
            continue
        kept[key] = value
        total += cost
    if dropped:
        kept["_dropped"] = sorted(dropped)
    return dict(sorted(kept.items()))


def _float(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None


def _int(value) -> int | None:
    number = _float(value)
    return int(number) if number is not None and number >= 0 else None


ALPHA_DTYPES = {"F16": "<e", "F32": "<f", "F64": "<d", "BF16": None}


def alpha_from_tensors(header: dict, *, path: str, head: bytes = b"") -> float | None:
    """The value of the first scalar ``*.alpha`` tensor (kohya layout), read from ``head``
    when it holds it, else with one small read of the file; None when there is none.

    The tensor's bytes are at ``8 + N + data_offsets[0]``
    (docs/protocols.md#safetensors-file-layout).
    """
    for key, spec in header.items():
        if not key.endswith(".alpha") or not isinstance(spec, dict):
            continue
        dtype, offsets = spec.get("dtype"), spec.get("data_offsets")
        if (dtype not in ALPHA_DTYPES or not isinstance(offsets, list) or len(offsets) != 2
                or spec.get("shape") not in ([], [1])):
            return None
        n = struct.unpack_from("<Q", head, 0)[0] if len(head) >= 8 else None
        if n is None:
            with open(path, "rb") as fh:
                n = struct.unpack("<Q", fh.read(8))[0]
        start, end = 8 + n + int(offsets[0]), 8 + n + int(offsets[1])
        if end - start not in (2, 4, 8):
            return None
        if end <= len(head):
            raw = head[start:end]
        else:
            with open(path, "rb") as fh:
                fh.seek(start)
                raw = fh.read(end - start)
        if len(raw) != end - start:
            return None
        if dtype == "BF16":
            return _float(struct.unpack("<f", b"\x00\x00" + raw)[0])
        return _float(struct.unpack(ALPHA_DTYPES[dtype], raw)[0])
    return None


def header_info(header: dict, *, data_bytes: int | None = None) -> LoraInfo:
    """Derive ``LoraInfo`` from a parsed header.

    Args:
        header: from :func:`header_read`.
        data_bytes: size in bytes of the tensor data (file size - 8 - N); when given, tensors
            ending past it are reported in ``problem`` (a truncated file).
    """
    meta = header.get("__metadata__") or {}
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    module, rank = network_from_tensors(tensors)
    info = LoraInfo(
        base_model=base_model_from_metadata(meta) or base_model_from_tensors(tensors),
        network_module=_clean(meta.get("ss_network_module") or module)[:100],
        network_rank=_int(meta.get("ss_network_dim")) if meta.get("ss_network_dim") else rank,
        network_alpha=_float(meta.get("ss_network_alpha")),
        trigger_words=[_clean(w)[:200] for w in trigger_words_from_metadata(meta)],
        metadata=metadata_keep(meta),
        tensor_count=len(tensors),
    )
    if data_bytes is not None:
        end = 0
        for spec in tensors.values():
            offsets = spec.get("data_offsets") if isinstance(spec, dict) else None
            if isinstance(offsets, list) and len(offsets) == 2 and isinstance(offsets[1], int):
                end = max(end, offsets[1])
        if end > data_bytes:
            info.problem = (f"Truncated file: tensor data ends at byte {end} of the data "
                            f"section but the file has {data_bytes}.")
    return info
