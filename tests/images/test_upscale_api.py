"""POST /api/upscale/: the local Lanczos upscaler or a provider's, with size limits checked
before queuing; the result links to its source."""

import io
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image as PILImage

from images.models import GenerationRequest, Image
from images.services import generation_run
from jobs.models import Job
from providers.base import Capabilities
from providers.fake import FakeProvider
from tests.factories import ImageFactory, ModelProfileFactory
from tests.support.wait import wait_for_job

pytestmark = pytest.mark.django_db


class NoUpscaleProvider(FakeProvider):
    capabilities = Capabilities(img2img=True, upscale=False)


def checker_png(size=(16, 12)) -> bytes:
    yy, xx = np.mgrid[0:size[1], 0:size[0]]
    arr = (((yy // 2 + xx // 2) % 2) * 255).astype(np.uint8)
    buf = io.BytesIO()
    PILImage.fromarray(arr, "L").convert("RGB").save(buf, format="PNG")
    return buf.getvalue()


def own_image(user, size=(16, 12)):
    return ImageFactory(user=user, width=size[0], height=size[1], seed=77,
                        file=ContentFile(checker_png(size), name="src.png"))


def post(client, fmt="json", **body):
    return client.post("/api/upscale/", body, format=fmt)


def media(field) -> np.ndarray:
    return np.asarray(PILImage.open(Path(settings.MEDIA_ROOT) / field.name), dtype=int)


def test_lanczos_upscale_of_an_own_image(api_client, fake_profile, user,
                                         django_capture_on_commit_callbacks):
    src = own_image(user)
    with django_capture_on_commit_callbacks(execute=False):
        resp = post(api_client, image_id=src.pk, factor=4)
    assert resp.status_code == 202, resp.content
    gen = GenerationRequest.objects.get(pk=resp.json()["id"])
    assert (gen.kind, gen.upscale_factor, gen.upscaler, gen.source_image_id) == (
        "upscale", 4, "lanczos", src.pk)
    assert (gen.width, gen.height) == (64, 48)
    assert generation_run(request_id=gen.pk).status == Job.Status.SUCCEEDED
    out = Image.objects.get(request=gen)
    assert (out.kind, out.source_id, out.width, out.height, out.seed) == (
        "upscale", src.pk, 64, 48, 77)
    px = media(out.file)
    assert px.shape == (48, 64, 3)
    params = PILImage.open(Path(settings.MEDIA_ROOT) / out.file.name).text["parameters"]
    assert "Postprocess upscale by: 4, Postprocess upscaler: Lanczos" in params
    assert len(np.unique(px)) > 2  # Lanczos interpolates (the fake's nearest would not)


@pytest.mark.django_db(transaction=True)
def test_lanczos_runs_on_the_default_queue_through_a_real_worker(
        api_client, fake_profile, user, celery_worker):
    resp = post(api_client, fmt="multipart", image=SimpleUploadedFile("a.png", checker_png()),
                factor=2)
    assert resp.status_code == 202, resp.content
    job = wait_for_job(resp.json()["job"])
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    assert job.kind == "upscale" and job.progress == 1.0
    out = Image.objects.get(request_id=resp.json()["id"])
    assert (out.width, out.height, out.source_id) == (32, 24, None)


def test_provider_upscaler(api_client, fake_profile, user, django_capture_on_commit_callbacks):
    src = own_image(user)
    with django_capture_on_commit_callbacks(execute=False):
        resp = post(api_client, image_id=src.pk, factor=2, upscaler="R-ESRGAN 4x+", model="fake")
    assert resp.status_code == 202, resp.content
    gen = GenerationRequest.objects.get(pk=resp.json()["id"])
    assert generation_run(request_id=gen.pk).status == Job.Status.SUCCEEDED
    px = media(Image.objects.get(request=gen).file)
    assert px.shape == (24, 32, 3)
    assert set(np.unique(px)) == {0, 255}  # the fake provider's nearest-neighbour upscaler ran


def test_provider_without_upscale_is_400(api_client, user, settings):
    settings.IMAGE_PROVIDERS = {**settings.IMAGE_PROVIDERS, "no_up": {
        "BACKEND": f"{__name__}.NoUpscaleProvider", "QUEUE": "default"}}
    ModelProfileFactory(slug="noup", provider="no_up")
    src = own_image(user)
    resp = post(api_client, image_id=src.pk, upscaler="ESRGAN", model="noup")
    assert resp.status_code == 400 and resp.json()["code"] == "unsupported"
    assert "upscaler" in resp.json()["fields"]
    # ...while the local upscaler works with any profile.
    resp = post(api_client, image_id=src.pk, model="noup")
    assert resp.status_code == 202


def test_limits_and_validation(api_client, fake_profile, user, other_user, settings):
    src = own_image(user, size=(100, 100))
    resp = post(api_client, image_id=src.pk, factor=3)
    assert resp.status_code == 400 and "factor" in resp.json()["fields"]
    settings.UPSCALE_MAX_OUTPUT_PIXELS = 200 * 200
    resp = post(api_client, image_id=src.pk, factor=4)  # 400x400 > 200x200
    assert resp.status_code == 400 and resp.json()["code"] == "image_too_large"
    assert "400x400" in resp.json()["message"] and "factor" in resp.json()["fields"]
    assert post(api_client, image_id=src.pk, factor=2).status_code == 202  # exactly the limit
    assert post(api_client, image_id=own_image(other_user).pk).status_code == 404
    resp = post(api_client, fmt="multipart", image=SimpleUploadedFile("x.png", b"nope"))
    assert resp.status_code == 400 and resp.json()["code"] == "invalid_image"
    assert post(api_client).status_code == 400
    assert Job.objects.count() == 1
