"""POST /api/edit/: img2img and inpaint from an own image or an upload, validated before queuing,
run through the fake provider; the result links to its source."""

import io
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from PIL import Image as PILImage

from images.models import GenerationRequest, Image
from images.services import generation_run
from jobs.models import Job
from providers.base import Capabilities
from providers.fake import FakeProvider
from tests.factories import ImageFactory, ModelProfileFactory
from tests.support.wait import wait_for_job

pytestmark = pytest.mark.django_db


class Img2ImgOnlyProvider(FakeProvider):
    """The fake engine declaring img2img but not inpaint (a real capability split: SD.Next's
    API has both, OpenAI's edits need a mask, many hosted models do only one)."""

    capabilities = Capabilities(img2img=True, inpaint=False, max_batch=1)


class TxtOnlyProvider(FakeProvider):
    capabilities = Capabilities(img2img=False, inpaint=False)


@pytest.fixture
def limited_providers(settings):
    settings.IMAGE_PROVIDERS = {
        **settings.IMAGE_PROVIDERS,
        "img2img_only": {"BACKEND": f"{__name__}.Img2ImgOnlyProvider", "QUEUE": "default"},
        "txt_only": {"BACKEND": f"{__name__}.TxtOnlyProvider", "QUEUE": "default"},
    }
    ModelProfileFactory(slug="i2i", provider="img2img_only", is_default=False)
    ModelProfileFactory(slug="txt", provider="txt_only", is_default=False)


def png(size=(48, 32), color=(200, 40, 40), mode="RGB", fmt="PNG") -> bytes:
    buf = io.BytesIO()
    PILImage.new(mode, size, color).save(buf, format=fmt)
    return buf.getvalue()


def upload(data: bytes, name="in.png"):
    """A file for a multipart body (the test client sends ``name`` as the file name)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data)


def own_image(user, size=(48, 32), color=(30, 160, 90)):
    return ImageFactory(user=user, width=size[0], height=size[1],
                        file=ContentFile(png(size, color), name="src.png"),
                        prompt="a quiet harbour")


def post(client, fmt="json", **body):
    return client.post("/api/edit/", body, format=fmt)


def test_requires_auth(anon_client, fake_profile):
    assert post(anon_client, image_id=1).status_code == 401


def test_exactly_one_source(api_client, fake_profile, user):
    resp = post(api_client, prompt="x")
    assert resp.status_code == 400 and "image" in resp.json()["fields"]
    img = own_image(user)
    resp = post(api_client, fmt="multipart", image_id=img.pk, image=upload(png()), prompt="x")
    assert resp.status_code == 400 and "image" in resp.json()["fields"]
    assert not Job.objects.exists()


def test_images_of_others_are_404(api_client, fake_profile, other_user):
    theirs = own_image(other_user)
    assert post(api_client, image_id=theirs.pk).status_code == 404
    theirs.is_public = True  # public is readable, but not yours to edit
    theirs.save()
    assert post(api_client, image_id=theirs.pk).status_code == 404
    assert post(api_client, image_id=999999).status_code == 404
    assert not Job.objects.exists()


@pytest.mark.parametrize("data, code", [
    (b"certainly not an image", "invalid_image"),
    (png()[:60], "invalid_image"),                  # truncated PNG
    (png(fmt="GIF"), "invalid_image"),              # a format we do not take
    (b"", "invalid_image"),
])
def test_bad_uploads_are_400(api_client, fake_profile, data, code):
    resp = post(api_client, fmt="multipart", image=upload(data), prompt="x")
    assert resp.status_code == 400, resp.content
    assert resp.json()["code"] == code and "image" in resp.json()["fields"]
    assert not Job.objects.exists()


def test_size_limits_are_400(api_client, fake_profile, settings):
    settings.EDIT_UPLOAD_MAX_BYTES = 100
    resp = post(api_client, fmt="multipart", image=upload(png()), prompt="x")
    assert resp.status_code == 400 and resp.json()["code"] == "image_too_large"
    settings.EDIT_UPLOAD_MAX_BYTES = 10**7
    settings.EDIT_MAX_PIXELS = 48 * 32 - 1
    resp = post(api_client, fmt="multipart", image=upload(png()), prompt="x")
    assert resp.status_code == 400 and resp.json()["code"] == "image_too_large"
    assert "48x32" in resp.json()["message"]
    assert not Job.objects.exists()


def test_decompression_bomb_is_400(api_client, fake_profile, settings, monkeypatch):
    """Pillow's own guard (MAX_IMAGE_PIXELS) also answers 400, never a 500."""
    settings.EDIT_MAX_PIXELS = 10**9
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 500)
    for size in ((30, 30), (48, 32)):  # 900 px: Pillow warns; 1536 px (> 2x): Pillow raises
        resp = post(api_client, fmt="multipart", image=upload(png(size)), prompt="x")
        assert resp.status_code == 400 and resp.json()["code"] == "image_too_large"


def test_mask_must_match_the_image(api_client, fake_profile):
    resp = post(api_client, fmt="multipart", image=upload(png((48, 32))),
                mask=upload(png((32, 32), 255, "L"), "m.png"), prompt="x")
    assert resp.status_code == 400 and "mask" in resp.json()["fields"]


def test_capabilities_are_checked_before_queuing(api_client, user, limited_providers):
    img = own_image(user)
    resp = post(api_client, image_id=img.pk, model="txt")
    assert resp.status_code == 400 and resp.json()["code"] == "unsupported"
    assert "image" in resp.json()["fields"] and "img2img" in resp.json()["message"]
    mask = upload(png((48, 32), 255, "L"), "m.png")
    resp = post(api_client, fmt="multipart", image_id=img.pk, mask=mask, model="i2i")
    assert resp.status_code == 400 and resp.json()["code"] == "unsupported"
    assert "mask" in resp.json()["fields"] and "inpaint" in resp.json()["message"]
    resp = post(api_client, image_id=img.pk, model="i2i", n=2)
    assert resp.status_code == 400 and "n" in resp.json()["fields"]
    assert not Job.objects.exists()


def test_other_validation(api_client, fake_profile, user):
    img = own_image(user)
    resp = post(api_client, fmt="multipart", image=upload(png()))  # an upload needs a prompt
    assert resp.status_code == 400 and "prompt" in resp.json()["fields"]
    resp = post(api_client, image_id=img.pk, width=1024)
    assert resp.status_code == 400 and "width" in resp.json()["fields"]
    for strength in (0, 1.5):
        resp = post(api_client, image_id=img.pk, strength=strength)
        assert resp.status_code == 400 and "strength" in resp.json()["fields"]
    resp = post(api_client, image_id=img.pk, model="nope")
    assert resp.status_code == 400 and resp.json()["code"] == "unknown_model"


def test_img2img_from_an_own_image(api_client, fake_profile, user,
                                   django_capture_on_commit_callbacks):
    src = own_image(user)
    with django_capture_on_commit_callbacks(execute=False):
        resp = post(api_client, image_id=src.pk, strength=0.4, seed=5)
    assert resp.status_code == 202, resp.content
    data = resp.json()
    assert data["status"] == "queued" and data["status_url"] == f"/api/status/{data['id']}/"
    gen = GenerationRequest.objects.get(pk=data["id"])
    assert (gen.kind, gen.source_image_id, gen.strength) == ("img2img", src.pk, 0.4)
    assert gen.prompt == "a quiet harbour"  # the source's prompt by default
    assert (gen.width, gen.height) == (48, 32) and not gen.mask
    assert PILImage.open(Path(settings.MEDIA_ROOT) / gen.init_image.name).size == (48, 32)

    job = generation_run(request_id=gen.pk)
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    out = Image.objects.get(request=gen)
    assert (out.kind, out.source_id, out.seed, out.width, out.height) == (
        "img2img", src.pk, 5, 48, 32)
    assert list(src.derived.all()) == [out]
    assert "Denoising strength: 0.4" in out.parameters
    pixels = np.asarray(PILImage.open(Path(settings.MEDIA_ROOT) / out.file.name), dtype=int)
    # strength 0.4: 60 % source colour, 40 % the fake's gradient.
    assert np.abs(pixels - np.array([30, 160, 90])).mean() < 0.4 * 255
    assert api_client.get(data["status_url"]).json()["images"][0]["id"] == out.pk


def test_inpaint_from_an_upload(api_client, fake_profile, django_capture_on_commit_callbacks):
    mask = PILImage.new("L", (48, 32), 0)
    mask.paste(255, (24, 0, 48, 32))
    buf = io.BytesIO()
    mask.save(buf, format="PNG")
    with django_capture_on_commit_callbacks(execute=False):
        resp = post(api_client, fmt="multipart", image=upload(png()),
                    mask=upload(buf.getvalue(), "mask.png"), prompt="a red door", strength=1.0)
    assert resp.status_code == 202, resp.content
    gen = GenerationRequest.objects.get(pk=resp.json()["id"])
    assert gen.kind == "inpaint" and gen.source_image is None and gen.mask
    assert generation_run(request_id=gen.pk).status == Job.Status.SUCCEEDED
    out = Image.objects.get(request=gen)
    assert out.kind == "inpaint" and out.source is None
    px = np.asarray(PILImage.open(Path(settings.MEDIA_ROOT) / out.file.name), dtype=int)
    assert (px[:, :24] == [200, 40, 40]).all()        # black mask: kept exactly
    assert (px[:, 24:] != [200, 40, 40]).any()        # white mask: repainted


@pytest.mark.django_db(transaction=True)
def test_edit_through_a_real_worker(api_client, fake_profile, celery_worker, user):
    src = own_image(user)
    resp = post(api_client, image_id=src.pk, prompt="at dawn", steps=10, strength=0.5)
    assert resp.status_code == 202
    job = wait_for_job(resp.json()["job"])
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    assert job.kind == "edit" and job.step == job.total_steps == 5  # steps x strength
    out = Image.objects.get(request_id=resp.json()["id"])
    assert out.source_id == src.pk and out.prompt == "at dawn"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from providers import demo

    return demo.build_demo_model(tmp_path_factory.mktemp("tiny") / "demo-sd-tiny")


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_img2img_and_inpaint_on_the_local_diffusers_pipeline(
        api_client, user, tiny_model, django_capture_on_commit_callbacks):
    from providers.diffusers_local import clear_pipeline_cache

    ModelProfileFactory(slug="tiny", provider="diffusers_local", pipeline_type="sd",
                        model_path=str(tiny_model), is_default=False)
    src = own_image(user, size=(64, 48))
    mask = PILImage.new("L", (64, 48), 0)
    mask.paste(255, (0, 0, 32, 48))
    buf = io.BytesIO()
    mask.save(buf, format="PNG")
    with django_capture_on_commit_callbacks(execute=False):
        i2i = post(api_client, image_id=src.pk, model="tiny", steps=4, strength=0.5)
        inp = post(api_client, fmt="multipart", image_id=src.pk, model="tiny", steps=2,
                   mask=upload(buf.getvalue(), "m.png"))
    assert i2i.status_code == 202 and inp.status_code == 202, (i2i.content, inp.content)
    try:
        for resp, kind in ((i2i, "img2img"), (inp, "inpaint")):
            job = generation_run(request_id=resp.json()["id"])
            assert job.status == Job.Status.SUCCEEDED, job.error_message
            out = Image.objects.get(request_id=resp.json()["id"])
            assert (out.kind, out.source_id, out.width, out.height) == (kind, src.pk, 64, 48)
            assert out.provider == "diffusers_local" and out.sampler == "Euler"
        assert Job.objects.get(pk=i2i.json()["job"]).total_steps == 2  # 4 steps x 0.5
    finally:
        clear_pipeline_cache()


def test_progress_reporter_carries_a_preview(user):
    from jobs.lease import job_claim
    from jobs.progress import ProgressReporter
    from jobs.services import job_create

    job = job_claim(job_id=job_create(kind="edit", user=user, total_steps=4).pk)
    reporter = ProgressReporter(job, min_interval=0)
    reporter.step(1, 4)
    assert "preview" not in Job.objects.get(pk=job.pk).result
    reporter.preview("data:image/webp;base64,AAAA")
    reporter.step(2, 4)
    stored = Job.objects.get(pk=job.pk)
    assert stored.result == {"preview": "data:image/webp;base64,AAAA"} and stored.step == 2
    reporter.step(3, 4)  # no new preview: the last one stays, nothing else written to result
    assert Job.objects.get(pk=job.pk).result == {"preview": "data:image/webp;base64,AAAA"}


def test_source_whose_file_is_gone_is_400(api_client, fake_profile, user):
    img = own_image(user)
    (Path(settings.MEDIA_ROOT) / img.file.name).unlink()
    resp = post(api_client, image_id=img.pk)
    assert resp.status_code == 400 and resp.json()["code"] == "invalid_image"
    assert "image_id" in resp.json()["fields"]
    resp = api_client.post("/api/upscale/", {"image_id": img.pk}, format="json")
    assert resp.status_code == 400 and "image_id" in resp.json()["fields"]
