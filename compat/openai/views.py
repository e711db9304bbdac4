"""The OpenAI Images API (``/v1/``): generations, edits, models, and the image URLs of
``response_format: "url"``. Thin: validate the OpenAI body, call the native services, wait for
the job (``compat.waiting``), answer ``{"created", "data": [...]}``.

Facts from OpenAI's API reference ("Images": create image, create image edit; "Models": list;
"Error codes") and the ``openai`` Python SDK (``images.generate``/``images.edit`` send JSON /
multipart; ``NotFoundError``... from the status).
"""

from __future__ import annotations

import io
import time

from django.conf import settings
from django.core import signing
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import FileResponse, Http404
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiTypes, extend_schema
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from core.exceptions import ApplicationError
from core.schema import api_errors
from images.api.serializers import GenerateSerializer
from images.api.serializers_edit import EditSerializer
from images.services import generation_create
from images.services.edit import edit_create, edit_image_load
from jobs.models import Job

from ..a1111.translate import image_b64, job_images, model_slug
from ..auth import BearerAuthentication
from ..errors import openai_exception_handler
from ..models import CompatOptions
from ..schema import OpenAIAutoSchema
from ..waiting import job_wait
from . import serializers as s

_SIGNER_SALT = "compat.openai.image-url"


class OpenAIView(APIView):
    """Base of the OpenAI views: Bearer (API token) auth, OpenAI error bodies and schema."""

    authentication_classes = [BearerAuthentication]
    permission_classes = [IsAuthenticated]
    schema = OpenAIAutoSchema()

    def get_exception_handler(self):
        return openai_exception_handler


def _model(requested: str | None, user) -> str | None:
    if requested:
        return model_slug(requested)
    options = CompatOptions.objects.select_related("checkpoint").filter(user=user).first()
    return options.checkpoint.slug if options is not None and options.checkpoint_id else None


def image_url(request, image) -> str:
    """An absolute URL that serves ``image`` without credentials for ``COMPAT_URL_MAX_AGE``
    seconds (signed; OpenAI's image URLs expire after an hour too)."""
    token = signing.TimestampSigner(salt=_SIGNER_SALT).sign(str(image.pk))
    return request.build_absolute_uri(reverse("openai:image-file", args=[token]))


def _answer(request, gen, response_format: str) -> dict:
    job = job_wait(job_id=gen.job_id)
    if job.status == Job.Status.FAILED:
        raise ApplicationError(job.error_code or "job_failed",
                               job.error_message or "The job failed.", status=500)
    if job.status != Job.Status.SUCCEEDED:
        raise ApplicationError("job_canceled", "The job was canceled.", status=409)
    images = job_images(gen)
    if response_format == "b64_json":
        data = [{"b64_json": image_b64(image), "revised_prompt": None} for image in images]
    else:
        data = [{"url": image_url(request, image), "revised_prompt": None} for image in images]
    return {"created": int(time.time()), "data": data}


def _size(data: dict) -> dict:
    size = data.get("size")
    return {"width": size[0], "height": size[1]} if size else {}


@api_errors(409, 503)
class GenerationsView(OpenAIView):
    """Create images from a prompt (OpenAI ``POST /v1/images/generations``); answers when the
    job has ended. ``model`` is a model profile slug; ``quality``/``style`` are ignored."""

    throttle_scope = "generate"

    @extend_schema(request=s.OpenAIGenerationsSerializer,
                   responses=s.OpenAIImagesResponseSerializer,
                   parameters=[OpenApiParameter(
                       "Idempotency-Key", str, OpenApiParameter.HEADER, required=False,
                       description="A repeated request with the same key returns the first "
                                   "one's images.")],
                   summary="Create image")
    def post(self, request):
        body = s.OpenAIGenerationsSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        params = {"prompt": data["prompt"], "model": _model(data.get("model"), request.user),
                  "n": data.get("n") or 1, **_size(data)}
        checked = GenerateSerializer(data={k: v for k, v in params.items() if v is not None})
        checked.is_valid(raise_exception=True)
        key = request.headers.get("Idempotency-Key", "").strip()[:255]
        gen = generation_create(user=request.user, params=checked.validated_data,
                                idempotency_key=key)
        return Response(_answer(request, gen, data.get("response_format") or "url"))


def _openai_mask(image_upload, mask_upload):
    """The native inpaint mask (white = repaint) for OpenAI's rule (alpha 0 = edit), or None
    for a whole-image edit. The image's own transparency is the mask when none is sent.

    Raises:
        ApplicationError: 400 ``invalid_image`` when ``mask`` has no alpha channel.
    """
    source = mask_upload if mask_upload is not None else image_upload
    field = "mask" if mask_upload is not None else "image"
    img = edit_image_load(upload=source, field=field)
    source.seek(0)
    if "A" not in img.getbands():
        if mask_upload is None:
            return None
        msg = "The mask must have an alpha channel (transparent = edit), as OpenAI's does."
        raise ApplicationError("invalid_image", f"mask: {msg}", fields={"mask": [msg]})
    alpha = img.getchannel("A")
    if mask_upload is None and alpha.getextrema()[0] >= 128:
        return None  # an opaque image: edit it whole
    mask = alpha.point(lambda a: 255 if a < 128 else 0)
    buf = io.BytesIO()
    mask.save(buf, format="PNG")
    return SimpleUploadedFile("mask.png", buf.getvalue())


@api_errors(409, 503)
class EditsView(OpenAIView):
    """Edit an image (OpenAI ``POST /v1/images/edits``, multipart): inpaint where the mask
    (or the image) is transparent, else img2img; answers when the job has ended."""

    parser_classes = [MultiPartParser, FormParser, JSONParser]
    throttle_scope = "edit"

    @extend_schema(request={"multipart/form-data": s.OpenAIEditsSerializer},
                   responses=s.OpenAIImagesResponseSerializer, summary="Create image edit")
    def post(self, request):
        data = {key: request.data.get(key) for key in request.data}
        if "image" not in data and "image[]" in data:
            data["image"] = data.pop("image[]")
        body = s.OpenAIEditsSerializer(data=data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        mask = _openai_mask(data["image"], data.get("mask"))
        params = {"prompt": data["prompt"], "model": _model(data.get("model"), request.user),
                  "n": data.get("n") or 1, "image": data["image"], "mask": mask, **_size(data)}
        checked = EditSerializer(data={k: v for k, v in params.items() if v is not None})
        checked.is_valid(raise_exception=True)
        params = dict(checked.validated_data)
        gen = edit_create(user=request.user, params=params, image_upload=params.pop("image"),
                          mask_upload=params.pop("mask", None))
        return Response(_answer(request, gen, data.get("response_format") or "url"))


class ModelsView(OpenAIView):
    """The model profiles that make images (OpenAI ``GET /v1/models``): ``id`` is the slug
    ``model`` takes."""

    @extend_schema(responses=s.OpenAIModelListSerializer, summary="List models")
    def get(self, request):
        from ..a1111.views_info import _profiles

        return Response({"object": "list", "data": [
            {"id": p.slug, "object": "model", "created": int(p.created_at.timestamp()),
             "owned_by": "atelier"} for p in _profiles()]})


class ImageFileView(OpenAIView):
    """The PNG behind an image URL of a ``response_format: "url"`` answer: no credentials
    needed while the signed token is valid (``COMPAT_URL_MAX_AGE`` seconds); 404 after."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(responses={(200, "image/png"): OpenApiTypes.BINARY}, summary="Image file")
    def get(self, request, token: str):
        from images.models import Image

        try:
            pk = signing.TimestampSigner(salt=_SIGNER_SALT).unsign(
                token, max_age=settings.COMPAT_URL_MAX_AGE)
            image = Image.objects.get(pk=int(pk))
        except (signing.BadSignature, ValueError, Image.DoesNotExist):
            raise Http404("No such image, or its URL expired.") from None
        try:
            handle = image.file.open("rb")
        except OSError:
            raise Http404("The image file is gone.") from None
        return FileResponse(handle, content_type="image/png")
