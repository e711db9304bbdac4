"""img2img/inpaint take A1111's sampler, schedule type, clip skip and VAE like txt2img: checked
before queuing by the same code, recorded on the request and the image, and they change the
pixels on the real tiny pipeline."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image as PILImage

from images.models import GenerationRequest, Image
from images.services import generation_run
from jobs.models import Job

pytestmark = pytest.mark.django_db


def _source() -> bytes:
    rng = np.random.default_rng(5)
    buf = io.BytesIO()
    PILImage.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def edit(client, capture, **body):
    with capture(execute=False):
        resp = client.post("/api/edit/", {
            "prompt": "a lighthouse", "model": "tiny", "steps": 4, "strength": 0.75,
            "seed": 3, "image": SimpleUploadedFile("src.png", _source()), **body},
            format="multipart")
    assert resp.status_code == 202, resp.content
    job = generation_run(request_id=resp.json()["id"])
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    request = GenerationRequest.objects.get(pk=resp.json()["id"])
    image = Image.objects.get(request=request)
    with image.file.open("rb") as fh:
        png = PILImage.open(io.BytesIO(fh.read()))
        png.load()
    return request, image, png


def test_img2img_sampler_changes_pixels_and_is_recorded(api_client, tiny,
                                                        django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    euler_req, euler_img, euler = edit(api_client, capture, sampler="Euler")
    again_req, _, again = edit(api_client, capture, sampler_name="Euler")
    dpm_req, dpm_img, dpm = edit(api_client, capture, sampler="DPM++ 2M", scheduler="Karras",
                                 clip_skip=2)
    assert (euler_req.kind, euler_req.sampler, again_req.sampler) == ("img2img", "Euler",
                                                                       "Euler")
    assert (dpm_req.sampler, dpm_req.scheduler, dpm_req.clip_skip) == ("DPM++ 2M", "Karras", 2)
    assert euler_img.sampler == "Euler" and dpm_img.sampler == "DPM++ 2M"
    a, b, c = (np.asarray(x.convert("RGB"), dtype=np.int16) for x in (euler, again, dpm))
    assert np.array_equal(a, b)          # same sampler, same seed: same pixels
    assert np.abs(a - c).mean() > 0.2    # another sampler (and clip skip): other pixels
    params = dpm.text["parameters"]
    assert "Sampler: DPM++ 2M" in params and "Schedule type: Karras" in params
    assert "Clip skip: 2" in params and "Denoising strength: 0.75" in params


@pytest.mark.parametrize("body, field", [
    ({"sampler": "DPM++ 2S a"}, "sampler"),
    ({"sampler": "no such sampler"}, "sampler"),
    ({"scheduler": "Fibonacci"}, "scheduler"),
    ({"clip_skip": 13}, "clip_skip"),
    ({"vae": "missing.safetensors"}, "vae"),
    ({"sampler": "Euler", "sampler_name": "Heun"}, "sampler_name"),
])
def test_bad_a1111_fields_are_400_and_nothing_is_queued(api_client, tiny, body, field):
    resp = api_client.post("/api/edit/", {
        "prompt": "x", "model": "tiny", "image": SimpleUploadedFile("s.png", _source()), **body},
        format="multipart")
    assert resp.status_code == 400, resp.content
    assert field in resp.json()["fields"], resp.json()
    assert not Job.objects.exists() and not GenerationRequest.objects.exists()
