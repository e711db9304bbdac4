"""The A1111 API's work endpoints: txt2img, img2img, extra-single-image, png-info, progress,
interrupt, skip. Thin: validate the A1111 body, translate (``translate.py``), call the native
service, wait for the job (``compat.waiting``), answer in A1111's shape.

Per-user, unlike A1111 (one shared state): ``progress`` reports the caller's own running job,
``interrupt`` stops the caller's own jobs.
"""

from __future__ import annotations

import io
import json

from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from core.exceptions import ApplicationError
from core.schema import api_errors
from images.api.serializers import GenerateSerializer
from images.api.serializers_edit import EditSerializer
from images.services import generation_create
from images.services.edit import edit_create, edit_image_load, upscale_create
from jobs.models import Job

from ..auth import CompatAuthentication
from ..errors import a1111_exception_handler
from ..models import CompatOptions
from ..schema import A1111AutoSchema
from ..waiting import job_wait
from . import serializers as s
from .translate import b64_image, generation_params, image_b64, job_images, result_info

#: Native field -> A1111 field, for error messages.
FIELD_NAMES = {"guidance_scale": "cfg_scale", "n": "batch_size", "strength": "denoising_strength",
               "model": "override_settings.sd_model_checkpoint", "sampler": "sampler_name",
               "image": "init_images", "clip_skip": "override_settings.CLIP_stop_at_last_layers",
               "vae": "override_settings.sd_vae"}
#: Job kinds the A1111 endpoints create (``progress``/``interrupt`` look at these).
WORK_KINDS = ("generate", "edit", "upscale")
IDEMPOTENCY = OpenApiParameter(
    "Idempotency-Key", str, OpenApiParameter.HEADER, required=False,
    description="Client-chosen key (at most 255 characters): a repeated request returns the "
                "first one's images.")


class A1111View(APIView):
    """Base of the A1111 views: HTTP Basic / token auth, A1111 error bodies and schema."""

    authentication_classes = [CompatAuthentication]
    permission_classes = [IsAuthenticated]
    schema = A1111AutoSchema()

    def get_exception_handler(self):
        return a1111_exception_handler


def _renamed(fields: dict | None) -> dict | None:
    return {FIELD_NAMES.get(k, k): v for k, v in fields.items()} if fields else fields


def native(call, *args, **kwargs):
    """Run a native serializer check or service; its errors name the A1111 fields."""
    try:
        return call(*args, **kwargs)
    except serializers.ValidationError as exc:
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        raise serializers.ValidationError(_renamed(detail)) from None
    except ApplicationError as exc:
        message = exc.message
        for old, new in FIELD_NAMES.items():
            if message.startswith(f"{old}:"):
                message = new + message[len(old):]
        raise ApplicationError(exc.code, message, status=exc.status,
                               fields=_renamed(exc.fields)) from None


def _idempotency_key(request) -> str:
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > 255:
        raise ApplicationError("invalid", "Idempotency-Key: at most 255 characters.",
                               fields={"Idempotency-Key": ["At most 255 characters."]})
    return key


def _user_options(user) -> CompatOptions | None:
    return CompatOptions.objects.select_related("checkpoint").filter(user=user).first()


def finished_answer(*, gen, body: dict, user, echo_images: bool = False) -> dict:
    """Wait for ``gen``'s job and answer ``{"images", "parameters", "info"}``.

    A failed job is 500 with the job's error (A1111 answers 500 when generation fails); a
    canceled one (``interrupt``) answers 200 with no images, as A1111 returns what it has.
    ``send_images`` false: no images in the answer; ``save_images`` false (A1111's default:
    nothing written to its outputs folder): the images are removed from the gallery once the
    answer is built (the job and its record stay).
    """
    job = job_wait(job_id=gen.job_id)
    if job.status == Job.Status.FAILED:
        raise ApplicationError(job.error_code or "job_failed",
                               job.error_message or "The job failed.", status=500)
    images = job_images(gen) if job.status == Job.Status.SUCCEEDED else []
    encoded = [image_b64(image) for image in images] if body.get("send_images", True) else []
    info = result_info(gen, images, job=job)
    parameters = {**body, "prompt": gen.prompt, "negative_prompt": gen.negative_prompt,
                  "seed": gen.seed, "steps": gen.steps, "cfg_scale": gen.guidance_scale,
                  "width": gen.width, "height": gen.height}
    if not echo_images:
        parameters.pop("init_images", None)
        parameters.pop("mask", None)
    if not body.get("save_images"):
        from images.services.library import image_delete

        with transaction.atomic():
            for image in images:
                image_delete(image=image, user=user)
    return {"images": encoded, "parameters": parameters, "info": info}


@api_errors(409, 503)
class Txt2ImgView(A1111View):
    """Generate images from a prompt (A1111 ``POST /sdapi/v1/txt2img``); answers when the job
    has ended (``COMPAT_WAIT_SECONDS`` at most). The job is a normal Atelier job: it shows in
    ``/api/jobs/``, the WebSocket and (with ``save_images``) the gallery."""

    throttle_scope = "generate"

    @extend_schema(request=s.A1111Txt2ImgSerializer, responses=s.A1111TextToImageResponseSerializer,
                   parameters=[IDEMPOTENCY], summary="txt2img")
    def post(self, request):
        body = s.A1111Txt2ImgSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        params = generation_params(data, options=_user_options(request.user))
        checked = GenerateSerializer(data=params)
        native(checked.is_valid, raise_exception=True)
        gen = native(generation_create, user=request.user, params=checked.validated_data,
                     idempotency_key=_idempotency_key(request))
        return Response(finished_answer(gen=gen, body=dict(data), user=request.user))


def _mask_upload(data: dict):
    """The A1111 mask as an upload for the native edit: decoded safely, inverted when
    ``inpainting_mask_invert`` is 1, blurred by ``mask_blur`` pixels (Gaussian, as A1111)."""
    if not data.get("mask"):
        return None
    from PIL import ImageFilter, ImageOps

    mask = edit_image_load(upload=b64_image(data["mask"], field="mask"), field="mask")
    mask = mask.convert("L")
    if data.get("inpainting_mask_invert"):
        mask = ImageOps.invert(mask)
    if data.get("mask_blur"):
        mask = mask.filter(ImageFilter.GaussianBlur(data["mask_blur"]))
    buf = io.BytesIO()
    mask.save(buf, format="PNG")
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("mask.png", buf.getvalue())


@api_errors(503)
class Img2ImgView(A1111View):
    """img2img, or inpaint with ``mask`` (A1111 ``POST /sdapi/v1/img2img``); answers when the
    job has ended."""

    throttle_scope = "edit"

    @extend_schema(request=s.A1111Img2ImgSerializer, responses=s.A1111TextToImageResponseSerializer,
                   summary="img2img")
    def post(self, request):
        body = s.A1111Img2ImgSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        image = b64_image(data["init_images"][0], field="init_images")
        mask = _mask_upload(data)
        params = generation_params(data, options=_user_options(request.user))
        edit = {key: params.get(key) for key in (
            "prompt", "negative_prompt", "model", "width", "height", "steps", "guidance_scale",
            "seed", "n", "sampler", "scheduler", "clip_skip", "vae") if key in params}
        edit.update(strength=data.get("denoising_strength"), image=image, mask=mask)
        checked = EditSerializer(data=edit)
        native(checked.is_valid, raise_exception=True)
        edit = dict(checked.validated_data)
        gen = native(edit_create, user=request.user, params=edit,
                     image_upload=edit.pop("image"), mask_upload=edit.pop("mask", None))
        return Response(finished_answer(gen=gen, body=dict(data), user=request.user,
                                        echo_images=bool(data.get("include_init_images"))))


@api_errors(503)
class ExtraSingleImageView(A1111View):
    """Upscale one image (A1111 ``POST /sdapi/v1/extra-single-image``) with Atelier's Lanczos
    upscaler, by 2 or 4; answers ``{"image", "html_info"}`` when the job has ended."""

    throttle_scope = "upscale"

    @extend_schema(request=s.A1111ExtraSingleImageSerializer,
                   responses=s.A1111ExtraSingleImageResponseSerializer,
                   summary="extra-single-image")
    def post(self, request):
        body = s.A1111ExtraSingleImageSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        upload = b64_image(data["image"], field="image")
        factor = data.get("upscaling_resize") or 2
        if data.get("resize_mode") == 1:
            img = edit_image_load(upload=upload, field="image")
            upload.seek(0)
            factor = (data.get("upscaling_resize_w") or 0) / img.width
        name = (data.get("upscaler_1") or "None").strip()
        if name.lower() not in ("none", "lanczos"):
            msg = f"Unknown upscaler {name!r}; use 'Lanczos' (or 'None')."
            raise ApplicationError("invalid", f"upscaler_1: {msg}", fields={"upscaler_1": [msg]})
        if factor not in (2, 4):
            msg = "Atelier upscales by 2 or 4."
            raise ApplicationError("invalid", f"upscaling_resize: {msg}",
                                   fields={"upscaling_resize": [msg]})
        gen = native(upscale_create, user=request.user,
                     params={"factor": int(factor), "upscaler": "lanczos"}, image_upload=upload)
        answer = finished_answer(gen=gen, body={"save_images": True}, user=request.user)
        if not answer["images"]:
            raise ApplicationError("job_canceled", "The upscale was interrupted.", status=409)
        return Response({"image": answer["images"][0], "html_info": ""})


class PngInfoView(A1111View):
    """The generation parameters stored in an image (A1111 ``POST /sdapi/v1/png-info``):
    ``info`` (the infotext as stored), ``items`` (its other text chunks) and ``parameters``
    (the infotext parsed into A1111's labels: ``Prompt``, ``Negative prompt``, ``Steps``,
    ``Size-1``, ``Size-2`` ...). Read by the native PNG Info (``images.pnginfo``)."""

    throttle_scope = "edit"

    @extend_schema(request=s.A1111PngInfoSerializer, responses=s.A1111PngInfoResponseSerializer,
                   summary="png-info")
    def post(self, request):
        from images.infotext import parse_infotext
        from images.pnginfo import png_info

        body = s.A1111PngInfoSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        upload = b64_image(body.validated_data["image"], field="image")
        found = native(png_info, upload=upload)
        upload.seek(0)
        img = edit_image_load(upload=upload, field="image")
        items = {k: v for k, v in (getattr(img, "text", None) or img.info).items()
                 if k != "parameters" and isinstance(v, str)}
        info = found.get("raw") or ""
        parameters: dict = {}
        if found.get("generator") == "AUTOMATIC1111":
            parsed = parse_infotext(info)
            parameters = {"Prompt": parsed.prompt, "Negative prompt": parsed.negative_prompt,
                          **parsed.params}
            size = parsed.size()
            if size:
                parameters["Size-1"], parameters["Size-2"] = str(size[0]), str(size[1])
        elif found.get("parameters"):
            parameters = json.loads(json.dumps(found["parameters"], default=str))
        return Response({"info": info, "items": items, "parameters": parameters})


def _active_jobs(user):
    return Job.objects.filter(user=user, kind__in=WORK_KINDS,
                              status__in=[Job.Status.QUEUED, Job.Status.RUNNING])


def _preview_png(data_url: str | None) -> str | None:
    """A job preview (``data:image/webp;base64,...``) as base64 PNG, as A1111 sends
    ``current_image``; None when there is none or it cannot be read."""
    if not data_url or "," not in data_url:
        return None
    import base64

    from PIL import Image as PILImage

    try:
        img = PILImage.open(io.BytesIO(base64.b64decode(data_url.partition(",")[2])))
        buf = io.BytesIO()
        img.save(buf, format="PNG")
    except (OSError, ValueError):
        return None
    return base64.b64encode(buf.getvalue()).decode("ascii")


class ProgressView(A1111View):
    """Progress of your current job (A1111 ``GET /sdapi/v1/progress``): ``progress`` 0..1,
    ``eta_relative`` seconds, ``state`` (``job_count`` = your queued and running jobs,
    ``sampling_step``/``sampling_steps``, ``interrupted``), ``current_image`` (base64 PNG of
    the latest step preview when the model profile makes previews, unless
    ``skip_current_image``) and ``textinfo``. Nothing running: progress 0, job_count 0."""

    @extend_schema(parameters=[s.A1111ProgressQuerySerializer],
                   responses=s.A1111ProgressResponseSerializer, summary="progress")
    def get(self, request):
        query = s.A1111ProgressQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        active = list(_active_jobs(request.user).order_by("created_at")[:50])
        running = next((job for job in active if job.status == Job.Status.RUNNING), None)
        job = running or (active[0] if active else None)
        state = {"skipped": False, "interrupted": bool(job and job.cancel_requested),
                 "stopping_generation": False, "job": str(job.pk) if job else "",
                 "job_count": len(active),
                 "job_timestamp": job.created_at.strftime("%Y%m%d%H%M%S") if job else "0",
                 "job_no": 0, "sampling_step": job.step if job else 0,
                 "sampling_steps": job.total_steps if job else 0}
        if job is None:
            return Response({"progress": 0.0, "eta_relative": 0.0, "state": state,
                             "current_image": None, "textinfo": None})
        preview = None
        if not query.validated_data["skip_current_image"]:
            preview = _preview_png((job.result or {}).get("preview"))
        return Response({"progress": round(job.progress, 4),
                         "eta_relative": round(job.eta_seconds or 0.0, 2), "state": state,
                         "current_image": preview, "textinfo": job.message or None})


class A1111EmptyResponse(serializers.Serializer):
    pass


class InterruptView(A1111View):
    """Stop your running generation, edit and upscale jobs (A1111 ``POST
    /sdapi/v1/interrupt``); their waiting ``txt2img``/``img2img`` calls answer with no
    images. Answers ``{}``."""

    @extend_schema(request=None, responses=A1111EmptyResponse, summary="interrupt")
    def post(self, request):
        from jobs.services import job_cancel

        for job in _active_jobs(request.user).filter(status=Job.Status.RUNNING):
            try:
                job_cancel(job=job)
            except ApplicationError:  # it ended meanwhile
                pass
        return Response({})


class SkipView(InterruptView):
    """A1111 ``POST /sdapi/v1/skip`` skips the image being made; Atelier's jobs make their
    images in one run, so skip stops the running jobs as ``interrupt`` does."""

    @extend_schema(request=None, responses=A1111EmptyResponse, summary="skip")
    def post(self, request):
        return super().post(request)
