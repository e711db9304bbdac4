"""PNG Info: the generation parameters an image carries, and the library resources they name.

Readers (docs/infotext.md#png-info, formats by generator):

- AUTOMATIC1111 (and Forge, SD.Next, Atelier): a PNG ``parameters`` text chunk or the EXIF
  ``UserComment`` of a JPEG/WebP, holding the infotext; read with :mod:`images.infotext`
  (A1111's own parsing rules, quoted values included).
- ComfyUI: PNG ``prompt`` (the API graph) and ``workflow`` (the editor graph) JSON chunks;
- InvokeAI: PNG ``invokeai_metadata`` JSON chunk (older: ``sd-metadata``, ``Dream``);
- NovelAI: PNG ``Description`` (prompt), ``Comment`` (JSON parameters), ``Source``, ``Software``;
- Fooocus: PNG ``parameters`` chunk holding JSON (``fooocus_scheme`` ``fooocus``).

The four last are read with ``sd-parsers`` (PyPI), which knows each of them; it also decides
the generator. Sampler names of ComfyUI/Fooocus (``dpmpp_2m`` + ``karras``), InvokeAI
(``dpmpp_2m_k``) and NovelAI (``k_euler_ancestral``) are given A1111's labels when there is one.
"""

from __future__ import annotations

import io
import json
import logging
from typing import Any

from django.conf import settings

from core.exceptions import ApplicationError
from core.limits import uploads_check

from .infotext import (
    generate_body,
    lora_tags_parse,
    model_name_and_hash,
    parse_infotext,
    request_params_from_infotext,
    to_float,
    to_int,
)

log = logging.getLogger(__name__)
CIVITAI_BY_HASH = "https://civitai.com/api/v1/model-versions/by-hash/{hash}"

#: Sampler names of ComfyUI (``comfy/samplers.py`` KSAMPLER_NAMES, also Fooocus), InvokeAI
#: (``SCHEDULER_NAME_VALUES``; ``_k`` = Karras sigmas) and NovelAI (``k_`` prefix) -> A1111.
_SAMPLER_LABELS = {
    "euler": "Euler", "euler_ancestral": "Euler a", "euler_a": "Euler a", "heun": "Heun",
    "lms": "LMS", "dpm_2": "DPM2", "kdpm_2": "DPM2", "dpm_2_ancestral": "DPM2 a",
    "kdpm_2_a": "DPM2 a", "dpmpp_2m": "DPM++ 2M", "dpmpp_sde": "DPM++ SDE",
    "dpmpp_2m_sde": "DPM++ 2M SDE", "dpmpp_2s_ancestral": "DPM++ 2S a", "ddim": "DDIM",
    "uni_pc": "UniPC", "unipc": "UniPC", "lcm": "LCM", "dpm_fast": "DPM fast",
    "dpm_adaptive": "DPM adaptive",
}
#: ComfyUI / NovelAI schedule names -> A1111 ``Schedule type`` ("" = Automatic).
_SCHEDULE_LABELS = {"karras": "Karras", "exponential": "Exponential",
                    "sgm_uniform": "SGM Uniform", "normal": "", "native": "", "simple": "Simple",
                    "ddim_uniform": "DDIM", "beta": "Beta"}


def sampler_label(name: str, schedule: str = "") -> tuple[str, str]:
    """``("dpmpp_2m_k", "")`` -> ``("DPM++ 2M", "Karras")``; names with no A1111 label are
    returned as given."""
    key = (name or "").strip().lower()
    key = key.removeprefix("k_").removesuffix("_gpu")
    if key.endswith("_k") and key[:-2] in _SAMPLER_LABELS:
        return _SAMPLER_LABELS[key[:-2]], "Karras"
    label = _SAMPLER_LABELS.get(key, name or "")
    sched = (schedule or "").strip()
    return label, _SCHEDULE_LABELS.get(sched.lower(), sched)


# ----------------------------------------------------------------------------- reading
def _open(upload):
    """The uploaded image, decoded (text chunks after the pixel data are read too).

    Raises:
        ApplicationError: 400 ``image_too_large`` (bytes, pixels), ``too_many_pixels``,
            ``invalid_image``.
    """
    from PIL import Image as PILImage

    limit = settings.EDIT_UPLOAD_MAX_BYTES
    if upload.size > limit:
        raise ApplicationError("image_too_large", f"image: the file has {upload.size} bytes; "
                               f"at most {limit} are accepted.",
                               fields={"image": [f"At most {limit} bytes."]})
    uploads_check([upload], field="image")  # REQUEST_MAX_PIXELS from the header
    data = upload.read()
    try:
        img = PILImage.open(io.BytesIO(data))
        img.load()
    except (OSError, ValueError, SyntaxError, PILImage.DecompressionBombError):
        raise ApplicationError("invalid_image", "image: the file is not a readable image.",
                               fields={"image": ["Not a readable image."]}) from None
    return img


def _a1111_parameters(text: str) -> dict[str, Any]:
    params = request_params_from_infotext(parse_infotext(text))
    return params


def _find_key(data: Any, key: str, depth: int = 0) -> Any:
    """The first value of ``key`` in nested dicts/lists (ComfyUI node inputs)."""
    if depth > 8:
        return None
    if isinstance(data, dict):
        if key in data and not isinstance(data[key], (dict, list)):
            return data[key]
        items = data.values()
    elif isinstance(data, list):
        items = data
    else:
        return None
    for item in items:
        found = _find_key(item, key, depth + 1)
        if found is not None:
            return found
    return None


def _loras_from(metadata: Any, prompt: str) -> list[dict[str, Any]]:
    """LoRAs named in ``metadata`` (ComfyUI ``LoraLoader`` inputs ``lora_name`` /
    ``strength_model``; InvokeAI ``loras: [{model|lora: {name|model_name, hash}, weight}]``;
    Fooocus ``lora_combined_N: "name : weight"`` or ``loras: [[name, weight]]``) and the
    ``<lora:...>`` tags of ``prompt``."""
    found: list[dict[str, Any]] = []

    def walk(node: Any, depth: int = 0) -> None:
        if depth > 8:
            return
        if isinstance(node, dict):
            if "lora_name" in node:
                found.append({"name": _stem(node["lora_name"]),
                              "weight": to_float(node.get("strength_model", 1.0)), "hash": None})
            for key in ("loras",):
                for item in node.get(key) or [] if isinstance(node.get(key), list) else []:
                    if isinstance(item, dict):
                        model = item.get("model") or item.get("lora") or {}
                        name = model.get("name") or model.get("model_name") or ""
                        if name:
                            found.append({"name": _stem(name),
                                          "weight": to_float(item.get("weight")),
                                          "hash": model.get("hash")})
                    elif isinstance(item, (list, tuple)) and len(item) >= 2 and item[0]:
                        found.append({"name": _stem(str(item[0])), "weight": to_float(item[1]),
                                      "hash": None})
            for key, value in node.items():
                if key.startswith("lora_combined_") and isinstance(value, str):
                    parts = [p.strip() for p in value.split(" : ")]  # Fooocus: name : [hash :] w
                    if len(parts) >= 2 and parts[0] and parts[0] != "None":
                        found.append({"name": _stem(parts[0]), "weight": to_float(parts[-1]),
                                      "hash": parts[1] if len(parts) == 3 else None})
                elif key != "loras":
                    walk(value, depth + 1)
        elif isinstance(node, list):
            for value in node:
                walk(value, depth + 1)

    walk(metadata)
    for tag in lora_tags_parse(prompt):
        found.append({"name": tag["name"], "weight": tag["weight"], "hash": None})
    unique: dict[str, dict[str, Any]] = {}
    for item in found:
        unique.setdefault(item["name"].lower(), item)
    return list(unique.values())


def _stem(name: str) -> str:
    base = str(name).replace("\\", "/").rsplit("/", 1)[-1]
    return base[: -len(".safetensors")] if base.lower().endswith(".safetensors") else base


def _other_parameters(info, img) -> dict[str, Any]:
    """Parameters of a ComfyUI/InvokeAI/NovelAI/Fooocus image from sd-parsers' result."""
    sampler = info.samplers[0] if info.samplers else None
    sp = dict(sampler.parameters) if sampler else {}
    meta = info.metadata or {}
    label, schedule = sampler_label(sampler.name if sampler else "",
                                    str(sp.get("scheduler") or meta.get("noise_schedule") or ""))
    model = sampler.model if sampler is not None else None
    # sd-parsers 0.6 takes a LoraLoader's ``model`` link for the checkpoint name: a list.
    model_name = model.name if model is not None and isinstance(model.name, str) else None
    if model_name is None and isinstance(info.raw_parameters.get("prompt"), str):
        try:  # ComfyUI: the checkpoint loader's file
            model_name = _find_key(json.loads(info.raw_parameters["prompt"]), "ckpt_name")
        except ValueError:
            model_name = None
    if model_name is None and isinstance(info.raw_parameters.get("invokeai_metadata"), str):
        try:  # InvokeAI 4: model {key, hash, name, base, type}, which sd-parsers 0.6 skips
            raw_model = json.loads(info.raw_parameters["invokeai_metadata"]).get("model") or {}
            model_name = raw_model.get("name") or raw_model.get("model_name")
        except (ValueError, AttributeError):
            model_name = None
    width = to_int(_find_key(meta, "width")) or to_int(sp.get("width"))
    height = to_int(_find_key(meta, "height")) or to_int(sp.get("height"))
    resolution = meta.get("resolution")  # Fooocus: "(1152, 896)"
    if not (width and height) and isinstance(resolution, str):
        parts = [p for p in resolution.strip("()[] ").split(",") if p.strip()]
        if len(parts) == 2:
            width, height = to_int(parts[0]), to_int(parts[1])
    if not (width and height) and sampler is not None and sampler.model is not None:
        width = to_int(_find_key(sampler.model.metadata, "width"))
        height = to_int(_find_key(sampler.model.metadata, "height"))
    clip = _find_key(meta, "clip_skip")
    return {
        "prompt": info.full_prompt, "negative_prompt": info.full_negative_prompt,
        "steps": to_int(sp.get("steps", meta.get("steps"))), "sampler": label,
        "scheduler": schedule, "cfg_scale": to_float(sp.get("cfg_scale", meta.get("cfg_scale"))),
        "seed": to_int(sp.get("seed", meta.get("seed"))),
        "width": width or img.width, "height": height or img.height,
        "clip_skip": (to_int(clip) or 0) + 1 if info.generator.value == "InvokeAI" and clip
        else (to_int(clip) or 1),
        "enable_hr": False, "hr_scale": None, "hr_second_pass_steps": None,
        "hr_upscaler": None, "denoising_strength": to_float(sp.get("denoise") or
                                                        sp.get("strength")),
        "model": _stem(model_name) if model_name else None,
        "model_hash": model.hash if model is not None else None, "vae": None, "vae_hash": None,
        "loras": _loras_from([meta, sampler.model.metadata if sampler and sampler.model
                              else {}, _raw_json(info.raw_parameters)], info.full_prompt),
        "version": None,
    }


def _raw_json(raw: dict) -> list:
    """The JSON chunks of an image (InvokeAI metadata, Fooocus parameters), decoded."""
    out = []
    for key in ("invokeai_metadata", "parameters"):
        if isinstance(raw.get(key), str):
            try:
                out.append(json.loads(raw[key]))
            except ValueError:
                continue
    return out


def _raw(raw: dict) -> str:
    text = raw.get("parameters")
    if isinstance(text, str):
        return text
    return json.dumps({k: v for k, v in raw.items() if isinstance(v, str)}, ensure_ascii=False)


# ----------------------------------------------------------------------------- resources
def _model_resource(name: str | None, model_hash: str | None) -> dict[str, Any] | None:
    """The model profile an infotext's ``Model``/``Model hash`` names: a single-file profile
    whose AutoV2 (already computed and cached, no file is hashed here) equals the hash, else a
    profile whose checkpoint stem, name or slug equals the name (case-insensitive)."""
    if not name and not model_hash:
        return None
    from providers.models import ModelProfile

    found = None
    want = (model_hash or "").lower()
    low = (name or "").lower()
    for profile in ModelProfile.objects.filter(enabled=True):
        stem, autov2 = model_name_and_hash(profile.model_path, profile.slug, compute=False)
        if want and autov2 and autov2.startswith(want[:10]):
            found = profile
            break
        if low and found is None and low in (stem.lower(), profile.name.lower(),
                                             profile.slug.lower()):
            found = profile
    return {"name": name, "hash": model_hash, "found": found is not None,
            "profile": found.slug if found else None,
            "profile_name": found.name if found else None,
            "civitai_lookup_url": CIVITAI_BY_HASH.format(hash=model_hash) if model_hash else None}


def _vae_resource(name: str | None, vae_hash: str | None) -> dict[str, Any] | None:
    """The VAE an infotext names (A1111 writes the file name), found when the VAE folder
    (``GET /api/vaes/``) has a file or folder of that name or stem."""
    if not name:
        return None
    from providers.vae import vae_choices

    choices = vae_choices()
    match = next((c for c in choices if name in (c, c.removesuffix(".safetensors"))), None)
    return {"name": match or name, "hash": vae_hash, "found": match is not None,
            "civitai_lookup_url": CIVITAI_BY_HASH.format(hash=vae_hash) if vae_hash else None}


def _lora_resources(loras: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each LoRA resolved in the library: by its hash (A1111's short hash is the first 12 hex
    of AutoV3; a SHA-256/AutoV2 prefix also matches), else by name (file stem, alias, name)."""
    from loras.models import LoraModel
    from loras.selectors import lora_resolve

    live = LoraModel.objects.filter(status=LoraModel.Status.PRESENT)
    out = []
    for item in loras:
        short = (item.get("hash") or "").lower()
        lora = None
        if len(short) >= 10 and all(c in "0123456789abcdef" for c in short):
            lora = (live.filter(autov3__startswith=short).first()
                    or live.filter(sha256__startswith=short).first())
        if lora is None and item.get("name"):
            lora = lora_resolve(ref=item["name"])
        lookup = short or (lora.sha256[:10] if lora is not None and lora.sha256 else "")
        out.append({"name": item.get("name"), "weight": item.get("weight"),
                    "hash": item.get("hash"), "found": lora is not None,
                    "lora_id": lora.pk if lora is not None else None,
                    "civitai_lookup_url": CIVITAI_BY_HASH.format(hash=lookup) if lookup
                    else None})
    return out


# ----------------------------------------------------------------------------- the answer
def png_info(*, upload) -> dict[str, Any]:
    """What ``upload`` (an image file) says about how it was made.

    Returns:
        ``{"generator": "AUTOMATIC1111" | "ComfyUI" | "InvokeAI" | "NovelAI" | "Fooocus" |
        None, "parameters": {prompt, negative_prompt, steps, sampler, scheduler, cfg_scale,
        seed, width, height, clip_skip, enable_hr, hr_scale, hr_second_pass_steps,
        hr_upscaler, denoising_strength, model, model_hash, vae, vae_hash, loras: [{name,
        weight, ...}], version}`` (``{}`` when the image carries none), ``"raw"`` (the text as
        stored: the infotext, or the JSON of the chunks), ``"resources": {"model": {name,
        hash, found, profile, profile_name, civitai_lookup_url} | None, "vae": {name, hash,
        found, civitai_lookup_url} | None, "loras": [{name,
        weight, hash, found, lora_id, civitai_lookup_url}]}``, ``"message"``}``.

    Raises:
        ApplicationError: 400 ``invalid_image``, ``image_too_large``, ``too_many_pixels``.
    """
    from sd_parsers import ParserManager

    img = _open(upload)
    try:
        info = ParserManager().parse(img)
    except Exception:  # noqa: BLE001 - a parser bug on odd metadata is "no parameters"
        info = None
    text = getattr(img, "text", {}) or {}
    generator = None
    parameters: dict[str, Any] = {}
    raw = ""
    if info is not None and info.generator.value == "AUTOMATIC1111":
        generator, raw = "AUTOMATIC1111", _raw(info.raw_parameters)
        parameters = _a1111_parameters(raw)
    elif info is not None:
        generator, raw = info.generator.value, _raw(info.raw_parameters)
        try:
            parameters = _other_parameters(info, img)
        except Exception:  # noqa: BLE001 - odd metadata: said so in the answer, never a 500
            log.warning("unreadable %s metadata", generator, exc_info=True)
            parameters = {}
    elif isinstance(text.get("parameters"), str) and text["parameters"].strip():
        # An infotext sd-parsers does not take (no Sampler field): A1111 still pastes it.
        generator, raw = "AUTOMATIC1111", text["parameters"]
        parameters = _a1111_parameters(raw)
    if not parameters:
        return {"generator": None, "parameters": {}, "raw": "",
                "resources": {"model": None, "vae": None, "loras": []}, "request": {},
                "message": "This image carries no generation parameters that Atelier can read "
                           "(A1111, ComfyUI, InvokeAI, NovelAI, Fooocus)."}
    model = _model_resource(parameters.get("model"), parameters.get("model_hash"))
    vae = _vae_resource(parameters.get("vae"), parameters.get("vae_hash"))
    return {
        "generator": generator, "parameters": parameters, "raw": raw,
        "resources": {"model": model, "vae": vae,
                      "loras": _lora_resources(parameters.get("loras") or [])},
        "request": generate_body(parameters, model=model["profile"] if model else None,
                                 vae=vae["name"] if vae and vae["found"] else None),
        "message": f"Parameters read from a {generator} image.",
    }
