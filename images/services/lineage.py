"""Lineage (issue 15): "generate again" repeats the operation that made an image — a txt2img
with its sampler, schedule type, clip skip, VAE and hires fix; an img2img/inpaint from the same
source with the same mask, strength and LoRAs; an upscale of the same source by the same factor
with the same upscaler.

The repeat is a new request through the ordinary create services (``generation_create``,
:func:`images.services.edit.edit_create`, :func:`images.services.edit.upscale_create`), so it is
validated, limited and queued exactly like one sent by hand.
"""

from __future__ import annotations

from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import Http404

from core.exceptions import ApplicationError

from ..models import GenerationRequest, Image
from ..selectors import image_lora_refs
from ..selectors_pages import txt2img_again_params
from .edit import edit_create, upscale_create


def _file_upload(field, name: str) -> SimpleUploadedFile | None:
    """The stored file ``field`` of a request as an upload, or None when it is empty/gone."""
    if not field:
        return None
    try:
        with field.open("rb") as fh:
            return SimpleUploadedFile(name, fh.read())
    except OSError:
        return None


def _source_params(*, image: Image, request: GenerationRequest, user) -> tuple[dict, object]:
    """``({"image_id": id}, None)`` when the source image is still there and ``user``'s, else
    ``({}, upload)`` with the input image the request recorded.

    Raises:
        ApplicationError: 400 ``not_repeatable`` when neither is left.
    """
    source = image.source
    if source is not None and source.user_id == user.pk:
        return {"image_id": source.pk}, None
    upload = _file_upload(request.init_image, "input.png")
    if upload is None:
        raise ApplicationError("not_repeatable", "The source image of this "
                               f"{request.kind} is gone; it cannot be repeated.")
    return {}, upload


def image_repeat(*, user, image: Image, new_seed: bool = False) -> GenerationRequest:
    """Queue the operation that made ``image`` again, with the same inputs (see the module
    doc); ``new_seed`` asks for a random seed instead of the image's (not for an upscale).

    Returns the new, queued ``GenerationRequest``.

    Raises:
        Http404: ``image`` is not ``user``'s (a repeat needs its source and request).
        ApplicationError: 400 ``not_repeatable`` (the request or the source is gone), and
            every error of the create service it calls (``unknown_lora`` for a LoRA that left
            the library, ``unknown_model``, ``invalid``...); 503 ``broker_unavailable``.
    """
    if image.user_id != getattr(user, "pk", None):
        raise Http404("No such image.")
    request = image.request
    if request is None:
        raise ApplicationError("not_repeatable", "The request that made this image is gone; "
                               "use its parameters on the generate page instead.")
    kind = image.kind or request.kind
    seed = -1 if new_seed else image.seed
    if kind == "upscale":
        params, upload = _source_params(image=image, request=request, user=user)
        params.update(factor=request.upscale_factor or 2, upscaler=request.upscaler or "lanczos",
                      model=request.profile.slug)
        return upscale_create(user=user, params=params, image_upload=upload)
    if kind in ("img2img", "inpaint"):
        params, upload = _source_params(image=image, request=request, user=user)
        mask = _file_upload(request.mask, "mask.png") if kind == "inpaint" else None
        if kind == "inpaint" and mask is None:
            raise ApplicationError("not_repeatable", "The mask of this inpaint is gone; it "
                                   "cannot be repeated.")
        params.update(prompt=request.prompt, negative_prompt=request.negative_prompt,
                      strength=request.strength, width=request.width, height=request.height,
                      steps=request.steps, guidance_scale=request.guidance_scale, seed=seed,
                      n=1, loras=image_lora_refs(image), model=request.profile.slug)
        return edit_create(user=user, params=params, image_upload=upload, mask_upload=mask)
    from . import generation_create

    params = txt2img_again_params(image=image, request=request)
    params["seed"] = seed
    return generation_create(user=user, params=params)
