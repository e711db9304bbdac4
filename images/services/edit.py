"""Edit (img2img, inpaint) and upscale: validate the input image, create the request + job, and
run it through the provider (or the local Lanczos upscaler).

Requests are ``GenerationRequest`` rows with ``kind`` ``"img2img"``, ``"inpaint"`` or
``"upscale"``; they run through the same ``images.generation_run`` task as txt2img, which calls
:func:`edit_outputs` for these kinds, so hooks, usage logs and failure handling are shared.
"""

from __future__ import annotations

import dataclasses
import io
import math
import random
import uuid
import warnings
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction

from core.exceptions import ApplicationError
from jobs.services import job_create, job_enqueue
from providers import registry
from providers.base import (
    EditSpec,
    GeneratedImage,
    GenerationSpec,
    ImageProvider,
    ModelSpec,
    ProgressSink,
    ProviderError,
    UpscaleSpec,
)
from providers.selectors import profile_get
from providers.upscale import FACTORS, LANCZOS, local_upscale

from ..models import GenerationRequest, Image
from ..selectors import image_get, image_lora_refs
from ..tasks import generation_run as generation_run_task
from . import MAX_SEED, _resolve_loras, a1111_params, generation_validate

#: Image formats accepted as edit/upscale sources and masks (Pillow format names).
ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP")


# ----------------------------------------------------------------------------- input images
def edit_image_load(*, upload=None, data: bytes | None = None, field: str = "image"):
    """Decode an uploaded image safely and return it as a loaded PIL image.

    Checks, in order: size in bytes (``EDIT_UPLOAD_MAX_BYTES``), that Pillow recognises a PNG,
    JPEG or WebP, the pixel count from the header before decoding (``EDIT_MAX_PIXELS``; Pillow's
    decompression-bomb warning and error are refused too), then a full decode (truncated files).

    Args:
        upload: a Django ``UploadedFile`` (or any object with ``size`` and ``read()``).
        data: raw bytes instead of ``upload``.
        field: the request field named in errors (``"image"`` or ``"mask"``).

    Raises:
        ApplicationError: 400 ``image_too_large`` or ``invalid_image`` naming ``field``.
    """
    from PIL import Image as PILImage

    def fail(code: str, message: str):
        return ApplicationError(code, f"{field}: {message}", fields={field: [message]})

    size = upload.size if upload is not None else len(data or b"")
    limit = settings.EDIT_UPLOAD_MAX_BYTES
    if size > limit:
        raise fail("image_too_large", f"The file has {size} bytes; at most {limit} are accepted.")
    if upload is not None:
        data = upload.read()
    if not data:
        raise fail("invalid_image", "The file is empty.")
    max_pixels = settings.EDIT_MAX_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            img = PILImage.open(io.BytesIO(data))
            if img.format not in ACCEPTED_FORMATS:
                raise fail("invalid_image", f"Format {img.format} is not accepted; send "
                                            f"{', '.join(ACCEPTED_FORMATS)}.")
            if img.width * img.height > max_pixels:
                raise fail("image_too_large", f"The image has {img.width}x{img.height} pixels; "
                                              f"at most {max_pixels} pixels are accepted.")
            img.load()
    except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning):
        raise fail("image_too_large", "The image claims more pixels than can be safely "
                                      "decoded.") from None
    except ApplicationError:
        raise
    except (OSError, ValueError, SyntaxError) as exc:  # Pillow's ways of saying "not an image"
        raise fail("invalid_image", f"Not a readable image ({type(exc).__name__}).") from None
    return img


def _png(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _source_image(*, user, image_id: int | None, upload) -> tuple[Image | None, Any]:
    """The source as ``(Image row or None, PIL image)``; an image of another user is 404."""
    if (image_id is None) == (upload is None):
        raise ApplicationError("invalid", "Give exactly one of image_id and image.",
                               fields={"image": ["Give exactly one of image_id and image."]})
    if image_id is not None:
        source = image_get(user=user, pk=image_id)  # own or public, else Http404
        if source.user_id != getattr(user, "pk", None):
            from django.http import Http404

            raise Http404("No such image.")
        try:
            with source.file.open("rb") as fh:
                data = fh.read()
        except OSError:  # the row outlived its file (deleted or moved storage)
            msg = f"The file of image {image_id} is missing; it cannot be used as a source."
            raise ApplicationError("invalid_image", f"image_id: {msg}",
                                   fields={"image_id": [msg]}) from None
        return source, edit_image_load(data=data, field="image_id")
    return None, edit_image_load(upload=upload)


def _provider_for(profile) -> ImageProvider:
    from providers.base import ProviderUnavailable

    try:
        return registry.get(profile.provider)
    except ProviderUnavailable as exc:
        raise ApplicationError(exc.code, exc.message, status=503) from None


def edit_steps_check(*, steps: int, strength: float) -> None:
    """Refuse an img2img/inpaint whose denoising would run no step at all.

    diffusers' img2img and inpaint pipelines run ``int(steps * strength)`` steps
    (``get_timesteps``: ``init_timestep = min(int(num_inference_steps * strength), ...)``; the
    inpaint pipeline raises "... steps is 0 which is < 1", img2img runs nothing and fails).
    The rule holds for every provider, so ``steps=1, strength=0.5`` is refused here, before
    queuing, instead of failing the job with ``internal_error``.

    Args:
        steps: the requested (or the profile's default) number of steps.
        strength: the denoising strength, 0..1.

    Raises:
        ApplicationError: 400 ``invalid`` naming ``steps`` and ``strength``.
    """
    if int(steps * strength) >= 1:
        return
    hint = ""
    if strength > 0:
        need = math.ceil(1 / strength)
        need += int(need * strength) < 1  # 1/strength rounded down by floating point
        hint = f" Use at least {need} steps or a higher strength."
    msg = (f"steps x strength must give at least 1 denoising step; {steps} x {strength:g} gives "
           f"{int(steps * strength)}.{hint}")
    raise ApplicationError("invalid", msg, fields={"steps": [msg], "strength": [msg]})


def edit_total_steps(*, steps: int, strength: float) -> int:
    """The denoising steps an img2img/inpaint of ``steps`` at ``strength`` runs:
    ``int(steps * strength)`` (diffusers ``get_timesteps``, see :func:`edit_steps_check`), at
    least 1. The job's ``total_steps`` says this from the start, so progress never jumps."""
    return max(1, int(steps * strength))


def request_total_steps(request: GenerationRequest) -> int:
    """The steps the run of ``request`` reports progress over: :func:`edit_total_steps` for
    img2img/inpaint, 1 for an upscale, ``request.steps`` otherwise (txt2img)."""
    if request.kind in ("img2img", "inpaint"):
        strength = request.strength if request.strength is not None else 0.75
        return edit_total_steps(steps=request.steps, strength=strength)
    if request.kind == "upscale":
        return 1
    return request.steps


def edit_create(*, user, params: dict, image_upload=None, mask_upload=None,
                enqueue: bool = True) -> GenerationRequest:
    """Queue an img2img (no mask) or inpaint (with mask) request.

    Args:
        params: ``EditSerializer`` data: ``image_id`` or the upload, ``prompt`` (defaults to the
            source image's prompt), ``strength`` 0..1 (default ``EDIT_DEFAULT_STRENGTH``),
            ``model``, ``width``/``height`` (default: source size rounded down to multiples of
            8), ``steps``, ``guidance_scale``, ``seed``, ``n``, ``negative_prompt``, ``loras``
            (``None``: the source image's LoRAs are kept; ``[]``: none besides prompt tags).
        image_upload / mask_upload: uploaded files; the mask (white = repaint) must have the
            source's size.

    Raises:
        ApplicationError: 400 ``invalid`` (also: steps x strength below one step, see
            :func:`edit_steps_check`) / ``invalid_image`` / ``image_too_large`` /
            ``unsupported`` (the provider cannot img2img/inpaint; names ``image`` or ``mask``),
            ``unknown_model``, ``unknown_lora``; 404 for another user's image; 503
            ``provider_unavailable`` / ``broker_unavailable``.
    """
    source, img = _source_image(user=user, image_id=params.get("image_id"), upload=image_upload)
    mask = edit_image_load(upload=mask_upload, field="mask") if mask_upload is not None else None
    if mask is not None and mask.size != img.size:
        msg = f"The mask is {mask.width}x{mask.height}; it must match the image ({img.width}x" \
              f"{img.height})."
        raise ApplicationError("invalid", f"mask: {msg}", fields={"mask": [msg]})
    kind = "inpaint" if mask is not None else "img2img"
    profile = profile_get(slug=params.get("model"))
    provider = _provider_for(profile)
    if not provider.supports(kind):
        field = "mask" if kind == "inpaint" else "image"
        msg = f"Provider {profile.provider!r} (model {profile.slug!r}) cannot do {kind}."
        raise ApplicationError("unsupported", f"{field}: {msg}", fields={field: [msg]})

    prompt = params.get("prompt") or (source.prompt if source is not None else "")
    if not prompt:
        raise ApplicationError("invalid", "prompt: required for an uploaded image.",
                               fields={"prompt": ["This field is required for an upload."]})
    width = params.get("width") or max(8, img.width // 8 * 8)
    height = params.get("height") or max(8, img.height // 8 * 8)
    steps = params.get("steps") or profile.default_steps
    guidance = params.get("guidance_scale")
    guidance = profile.default_guidance_scale if guidance is None else guidance
    n = params.get("n") or 1
    seed = params.get("seed")
    if seed is None or seed < 0:
        seed = random.randint(0, MAX_SEED - n)
    negative = params.get("negative_prompt")
    if negative is None:
        negative = source.negative_prompt if source is not None else profile.default_negative_prompt
    strength = params.get("strength")
    strength = settings.EDIT_DEFAULT_STRENGTH if strength is None else strength
    edit_steps_check(steps=steps, strength=strength)
    wanted = params.get("loras")
    if wanted is None:  # not said: the source's LoRAs stay (an edit of a LoRA image keeps it)
        wanted = image_lora_refs(source)
    clean, loras = _resolve_loras(prompt=prompt, loras=wanted, negative_prompt=negative,
                                  profile=profile)  # 400 lora_incompatible before queuing
    if not clean:
        raise ApplicationError("invalid", "prompt: nothing left once LoRA tags are removed.",
                               fields={"prompt": ["The prompt has no text besides LoRA tags."]})
    generation_validate(profile=profile, width=width, height=height, n=n, loras=loras)
    from .embeddings import embeddings_for_prompt  # textual inversion names: 400s here

    embeddings = embeddings_for_prompt(clean, negative, profile)
    # Sampler, schedule type, clip skip and VAE as on txt2img (400 naming the allowed values).
    a1111 = a1111_params(profile=profile, params={**params, "enable_hr": False}, width=width,
                         height=height, steps=steps, n=n)
    a1111 = {key: a1111[key] for key in ("sampler", "scheduler", "clip_skip", "vae")}

    stem = uuid.uuid4().hex
    with transaction.atomic():
        job = job_create(kind="edit", user=user,
                         total_steps=edit_total_steps(steps=steps, strength=strength),
                         celery_task_id=str(uuid.uuid4()))
        request = GenerationRequest(
            user=user, job=job, profile=profile, kind=kind, prompt=prompt, clean_prompt=clean,
            negative_prompt=negative, width=width, height=height, steps=steps,
            guidance_scale=guidance, seed=seed, n=n, loras=loras, source_image=source,
            strength=strength, embeddings=embeddings, **a1111,
        )
        request.init_image.save(f"{stem}.png", ContentFile(_png(img)), save=False)
        if mask is not None:
            request.mask.save(f"{stem}.png", ContentFile(_png(mask.convert("L"))), save=False)
        request.save()
        if enqueue:  # recorded with the job; published at the commit
            job_enqueue(job=request.job, task=generation_run_task, args=[request.pk],
                        queue=registry.provider_queue(profile.provider))
    return request


# ----------------------------------------------------------------------------- upscale
def upscale_create(*, user, params: dict, image_upload=None,
                   enqueue: bool = True) -> GenerationRequest:
    """Queue an upscale by ``factor`` (2 or 4) with ``upscaler``.

    ``upscaler`` ``"lanczos"`` (default) runs the local Lanczos + unsharp-mask upscaler, always
    available; any other name is passed to the provider of the model profile ``model`` (default
    profile when omitted), which must declare the ``upscale`` capability. The result size
    (source pixels x factor squared) must not exceed ``UPSCALE_MAX_OUTPUT_PIXELS``.

    Raises:
        ApplicationError: 400 ``invalid`` (factor), ``image_too_large`` (source or result),
            ``invalid_image``, ``unsupported`` (naming ``upscaler``), ``unknown_model``; 404 for
            another user's image; 503 ``provider_unavailable`` / ``broker_unavailable``.
    """
    factor = int(params.get("factor") or 2)
    if factor not in FACTORS:
        msg = f"Must be one of {', '.join(map(str, FACTORS))}."
        raise ApplicationError("invalid", f"factor: {msg}", fields={"factor": [msg]})
    source, img = _source_image(user=user, image_id=params.get("image_id"), upload=image_upload)
    out_w, out_h = img.width * factor, img.height * factor
    limit = settings.UPSCALE_MAX_OUTPUT_PIXELS
    if out_w * out_h > limit:
        msg = (f"The result would be {out_w}x{out_h} pixels; at most {limit} pixels are "
               "allowed. Use a smaller factor or image.")
        raise ApplicationError("image_too_large", f"factor: {msg}", fields={"factor": [msg]})
    upscaler = (params.get("upscaler") or LANCZOS).strip()
    profile = profile_get(slug=params.get("model"))
    if upscaler != LANCZOS:
        provider = _provider_for(profile)
        if not provider.supports("upscale"):
            msg = (f"Provider {profile.provider!r} (model {profile.slug!r}) has no upscaler; "
                   f"use {LANCZOS!r} or a model whose provider can upscale.")
            raise ApplicationError("unsupported", f"upscaler: {msg}", fields={"upscaler": [msg]})
    stem = uuid.uuid4().hex
    with transaction.atomic():
        job = job_create(kind="upscale", user=user, total_steps=1,
                         celery_task_id=str(uuid.uuid4()))
        request = GenerationRequest(
            user=user, job=job, profile=profile, kind="upscale",
            prompt=source.prompt if source is not None else "",
            clean_prompt=source.prompt if source is not None else "",
            negative_prompt=source.negative_prompt if source is not None else "",
            width=out_w, height=out_h, steps=1,
            guidance_scale=source.guidance_scale if source is not None else 0.0,
            seed=source.seed if source is not None else 0, n=1,
            loras=[],  # the LoRAs of the source are in its own row; nothing is re-applied
            source_image=source, upscale_factor=factor, upscaler=upscaler,
        )
        request.init_image.save(f"{stem}.png", ContentFile(_png(img)), save=False)
        request.save()
        if enqueue:  # recorded with the job; published at the commit
            # The local upscaler is Pillow only: the "default" queue, never waits for a GPU.
            queue_name = ("default" if upscaler == LANCZOS
                          else registry.provider_queue(profile.provider))
            job_enqueue(job=request.job, task=generation_run_task, args=[request.pk],
                        queue=queue_name)
    return request


# ----------------------------------------------------------------------------- running
def edit_infotext_extra(*, request: GenerationRequest) -> dict[str, Any]:
    """Fields added to the PNG ``parameters`` of an edit/upscale result, named as A1111 writes
    them: ``Denoising strength`` (img2img/inpaint), ``Postprocess upscale by`` and
    ``Postprocess upscaler`` (upscale)."""
    if request.kind == "upscale":
        name = "Lanczos" if request.upscaler in ("", LANCZOS) else request.upscaler
        return {"Postprocess upscale by": request.upscale_factor, "Postprocess upscaler": name}
    return {"Denoising strength": request.strength}


def _open_field(field) -> Any:
    from PIL import Image as PILImage

    with field.open("rb") as fh:
        img = PILImage.open(io.BytesIO(fh.read()))
        img.load()
    return img


def edit_outputs(*, request: GenerationRequest, spec: GenerationSpec,
                 sink: ProgressSink) -> list[GeneratedImage]:
    """Run an img2img/inpaint/upscale ``request`` (called by ``generation_run``).

    The profile's provider is only instantiated when it is used (not for the local upscaler).

    Args:
        spec: the txt2img spec of the request (``_spec_for``), extended here with the source.

    Raises:
        ProviderError: ``invalid_request`` for an unknown kind or a missing input file; the
            provider's own errors.
    """
    if not request.init_image:
        raise ProviderError("invalid_request", "The request has no input image.")
    try:
        init = _open_field(request.init_image)
        mask = _open_field(request.mask) if request.mask else None
    except OSError as exc:
        raise ProviderError("invalid_request", f"The input image cannot be read: {exc}") from exc
    if request.kind == "upscale":
        upscale_spec = UpscaleSpec(
            image=init, factor=int(request.upscale_factor or 2),
            model=ModelSpec(pipeline_type=request.profile.pipeline_type,
                            model=request.profile.model_path, name=request.profile.name,
                            options=request.profile.options),
            upscaler="" if request.upscaler == LANCZOS else request.upscaler)
        if request.upscaler in ("", LANCZOS):
            out = local_upscale(upscale_spec, sink)
        else:
            out = registry.get(request.profile.provider).upscale(upscale_spec, sink)
        out.seed = request.seed
        return [out]
    if request.kind not in ("img2img", "inpaint"):
        raise ProviderError("invalid_request", f"Unknown request kind {request.kind!r}.")
    # Every GenerationSpec field (sampler, schedule type, clip skip, VAE, embeddings...) but
    # the hires fix, which is txt2img's.
    common = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec) if f.name != "hires"}
    edit_spec = EditSpec(
        **common,
        init_image=init.convert("RGB"), mask=mask.convert("L") if mask is not None else None,
        strength=float(request.strength if request.strength is not None else 0.75),
    )
    return registry.get(request.profile.provider).edit(edit_spec, sink)
