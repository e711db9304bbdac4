"""A1111 API ⇄ Atelier: request bodies to the native services' parameters, results back to
A1111's response shapes. Validation, LoRA resolution and job handling stay in the native
services; this module only renames and reshapes.

Facts from AUTOMATIC1111/stable-diffusion-webui (docs/clients.md lists the files):
``modules/api/models.py`` (field names and defaults of ``StableDiffusionTxt2ImgProcessingAPI``
and ``...Img2Img...``), ``modules/api/api.py`` (``sampler_name or sampler_index``,
``send_images``/``save_images``, the ``info`` JSON of ``Processed.js()``, the ``progress``
answer). Sampler and schedule type names go to the native API as sent: its check
(``providers.samplers.sampler_check``) takes A1111's labels, aliases (``k_euler_a``), internal
schedule names (``automatic``) and the old combined names (``DPM++ 2M Karras``).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile

from core.exceptions import ApplicationError

# ----------------------------------------------------------------------------- models
_HASHED = re.compile(r"^(?P<name>.*?)\s*\[(?P<hash>[0-9a-fA-F]{8,64})\]$")


def profile_hashes(profile) -> tuple[str, str]:
    """``(short hash, sha256)`` of a profile's single-file checkpoint when already known (hashed
    once per file for the infotext, ``images.infotext.file_sha256``); ``("", "")`` otherwise
    (a diffusers folder, a remote model, a file not hashed yet). Never reads the file here."""
    from images.infotext import file_sha256

    if not profile.model_path or not os.path.isfile(profile.model_path):
        return "", ""
    sha = file_sha256(profile.model_path, compute=False)
    return sha[:10], sha


def profile_title(profile) -> str:
    """A1111's checkpoint title ``"name [hash]"`` (``modules/sd_models.py``
    ``CheckpointInfo.title``): the profile slug, with the short hash when it is known."""
    short, _ = profile_hashes(profile)
    return f"{profile.slug} [{short}]" if short else profile.slug


def profile_find(title: str | None):
    """The enabled model profile a checkpoint title, name, slug, or file name refers to, or
    None. ``"demo [abc123]"``, ``"demo"``, ``"Demo"`` and ``"demo.safetensors"`` all find the
    profile ``demo``."""
    from providers.models import ModelProfile

    if title is None or title == "":
        return None
    text = str(title).strip()
    if not text or "\x00" in text:  # no such name (and PostgreSQL refuses NUL in a query)
        return None
    match = _HASHED.match(text)
    if match:
        text = match.group("name")
    stem = os.path.splitext(os.path.basename(text))[0]
    profiles = ModelProfile.objects.filter(enabled=True)
    for candidate in (text, stem):
        found = (profiles.filter(slug=candidate).first()
                 or profiles.filter(name__iexact=candidate).first())
        if found is not None:
            return found
    for profile in profiles:
        path = (profile.model_path or "").rstrip("/")
        if path and os.path.splitext(os.path.basename(path))[0] == stem:
            return profile
    return None


def model_slug(title: str | None) -> str | None:
    """The profile slug for a checkpoint title (see :func:`profile_find`); an unknown title is
    passed on as given, so the native service answers 400 ``unknown_model`` naming the
    available ones."""
    if title is None or title == "":
        return None
    found = profile_find(title)
    if found is None and "\x00" in str(title):
        msg = "No model profile by this name."
        raise ApplicationError("unknown_model", f"model: {msg}", fields={"model": [msg]})
    return found.slug if found is not None else str(title).strip()


# ----------------------------------------------------------------------------- requests
def _override(body: dict, key: str):
    return (body.get("override_settings") or {}).get(key)


def generation_params(body: dict, *, options=None) -> dict:
    """The native ``POST /api/generate/`` body for an A1111 txt2img ``body`` (validated by
    ``Txt2ImgSerializer``; unknown A1111 fields were dropped there).

    ``options`` (a ``CompatOptions`` or None) gives the user's checkpoint and clip skip when the
    request names none (``override_settings.sd_model_checkpoint`` /
    ``CLIP_stop_at_last_layers``). ``batch_size`` x ``n_iter`` images are made (``n``).
    """
    sampler = body.get("sampler_name") or body.get("sampler_index") or ""
    schedule = body.get("scheduler") or ""
    checkpoint = _override(body, "sd_model_checkpoint")
    model = model_slug(checkpoint) if checkpoint else (
        options.checkpoint.slug if options is not None and options.checkpoint_id else None)
    clip_skip = _override(body, "CLIP_stop_at_last_layers")
    if clip_skip is None and options is not None and options.clip_skip != 1:
        clip_skip = options.clip_skip
    params: dict[str, Any] = {
        "prompt": body.get("prompt", ""), "negative_prompt": body.get("negative_prompt") or "",
        "model": model, "width": body.get("width"), "height": body.get("height"),
        "steps": body.get("steps"), "guidance_scale": body.get("cfg_scale"),
        "seed": body.get("seed"),
        "n": (body.get("batch_size") or 1) * (body.get("n_iter") or 1),
        "sampler": sampler, "scheduler": schedule,
    }
    if clip_skip is not None:
        params["clip_skip"] = clip_skip
    vae = _override(body, "sd_vae")
    if vae and str(vae).lower() not in ("automatic", "none"):
        params["vae"] = vae
    if body.get("enable_hr"):
        scale = body.get("hr_scale")
        width, height = body.get("width") or 0, body.get("height") or 0
        if (body.get("hr_resize_x") or body.get("hr_resize_y")) and width and height:
            scale = max((body.get("hr_resize_x") or 0) / width,
                        (body.get("hr_resize_y") or 0) / height)
        params.update(enable_hr=True, hr_scale=scale, hr_upscaler=body.get("hr_upscaler") or "",
                      hr_second_pass_steps=body.get("hr_second_pass_steps") or 0,
                      denoising_strength=body.get("denoising_strength"))
    return {key: value for key, value in params.items() if value is not None}


def b64_image(value: str, *, field: str) -> SimpleUploadedFile:
    """An upload made of a base64 image as A1111 takes it: raw base64 or a ``data:image/...``
    URL (URLs to fetch are refused: Atelier never fetches on a client's behalf).

    Raises:
        ApplicationError: 400 ``invalid_image`` naming ``field``.
    """
    text = (value or "").strip()
    if text.startswith(("http://", "https://")):
        msg = "Image URLs are not fetched; send the image as base64."
        raise ApplicationError("invalid_image", f"{field}: {msg}", fields={field: [msg]})
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        msg = "Not valid base64."
        raise ApplicationError("invalid_image", f"{field}: {msg}", fields={field: [msg]}) \
            from None
    return SimpleUploadedFile(f"{field}.png", data)


# ----------------------------------------------------------------------------- results
def job_images(gen) -> list:
    """The Image rows a finished generation request made, in order."""
    return list(gen.images.order_by("pk"))


def image_b64(image) -> str:
    """The stored PNG of ``image`` (with its ``parameters`` chunk), base64 as A1111 sends it."""
    with image.file.open("rb") as fh:
        return base64.b64encode(fh.read()).decode("ascii")


def result_info(gen, images: list, *, job) -> str:
    """The ``info`` string of a txt2img/img2img answer: the JSON of A1111's ``Processed.js()``
    (prompt, seeds, size, sampler, infotexts, ...) for what Atelier made."""
    first = images[0] if images else None
    seeds = [image.seed for image in images] or [gen.seed]
    info = {
        "prompt": gen.prompt, "all_prompts": [gen.prompt] * len(seeds),
        "negative_prompt": gen.negative_prompt,
        "all_negative_prompts": [gen.negative_prompt] * len(seeds),
        "seed": seeds[0], "all_seeds": seeds, "subseed": -1, "all_subseeds": [-1] * len(seeds),
        "subseed_strength": 0, "width": first.width if first else gen.width,
        "height": first.height if first else gen.height,
        "sampler_name": (first.sampler if first else "") or getattr(gen, "sampler", ""),
        "cfg_scale": gen.guidance_scale, "steps": gen.steps, "batch_size": gen.n,
        "restore_faces": False, "face_restoration_model": None,
        "sd_model_name": gen.profile.slug, "sd_model_hash": None,
        "sd_vae_name": getattr(gen, "vae", "") or None, "sd_vae_hash": None,
        "seed_resize_from_w": -1, "seed_resize_from_h": -1,
        "denoising_strength": gen.strength, "extra_generation_params": {},
        "index_of_first_image": 0, "infotexts": [image.parameters for image in images],
        "styles": [], "job_timestamp": job.created_at.strftime("%Y%m%d%H%M%S"),
        "clip_skip": getattr(gen, "clip_skip", 1), "is_using_inpainting_conditioning": False,
        "version": "atelier", "job": str(job.pk), "interrupted": job.status == "canceled",
        "image_ids": [image.pk for image in images],
    }
    return json.dumps(info)
