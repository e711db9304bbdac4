"""A job is routed to the provider its model profile names, remote ones included: the real
services (generation_create + generation_run) against the fake servers over loopback."""

import copy

import pytest
from django.core.cache import cache

from images.services import generation_create, generation_run
from jobs.models import Job
from loras.models import LibraryRoot, LoraModel
from providers import registry
from tests.factories import ModelProfileFactory

from .fakes.gemini import FakeGemini
from .fakes.openai import FakeOpenai
from .fakes.replicate import FakeReplicate
from .fakes.runware import FakeRunware
from .fakes.sdnext import FakeSdnext

pytestmark = pytest.mark.django_db

ROUTES = {  # provider: (fake class, base path, pipeline type, model)
    "sdnext": (FakeSdnext, "", "sd", "v1-5-pruned-emaonly.safetensors [6ce0161689]"),
    "replicate": (FakeReplicate, "/v1", "replicate", "owner/model"),
    "runware": (FakeRunware, "/v1", "runware", "runware:100@1"),
    "gemini": (FakeGemini, "/v1beta", "gemini", "gemini-2.5-flash-image"),
    "openai": (FakeOpenai, "/v1", "openai", "dall-e-2"),
}


@pytest.fixture
def route(request, settings):
    name = request.param
    fake_cls, base, pipeline_type, model = ROUTES[name]
    fake = fake_cls()
    settings.IMAGE_PROVIDERS = copy.deepcopy(settings.IMAGE_PROVIDERS)
    settings.IMAGE_PROVIDERS[name]["OPTIONS"].update(
        base_url=fake.base_url + base, api_key=fake.api_key, timeout=5.0, max_retries=1,
        backoff=0.01)
    if name == "replicate":
        settings.IMAGE_PROVIDERS[name]["OPTIONS"]["poll_interval"] = 0.01
    registry.reset()
    cache.clear()
    profile = ModelProfileFactory(slug=f"{name}-profile", name=name, provider=name,
                                  pipeline_type=pipeline_type, model_path=model,
                                  is_default=False, max_width=1024, max_height=1024)
    yield name, fake, profile
    fake.stop()
    registry.reset()


def _run(user, **params) -> Job:
    gen = generation_create(user=user, params={"prompt": "a lighthouse", **params},
                            enqueue=False)
    return generation_run(request_id=gen.pk)


@pytest.mark.parametrize("route", sorted(ROUTES), indirect=True)
def test_a_profile_routes_the_job_to_its_provider(user, route):
    name, fake, profile = route
    job = _run(user, model=profile.slug, width=512, height=512)
    assert job.status == Job.Status.SUCCEEDED, (job.error_code, job.error_message)
    assert len(job.result["images"]) == 1
    assert fake.count() >= 1  # the remote engine was called


@pytest.mark.parametrize("route", ["openai"], indirect=True)
def test_a_permanent_remote_error_fails_the_job_with_the_providers_message(user, route,
                                                                           settings):
    name, fake, profile = route
    settings.IMAGE_PROVIDERS[name]["OPTIONS"]["api_key"] = "sk-bad"
    registry.reset()
    job = _run(user, model=profile.slug, width=512, height=512)
    assert job.status == Job.Status.FAILED
    assert job.error_code == "provider_auth" and "Incorrect API key" in job.error_message


@pytest.mark.parametrize("route", ["runware"], indirect=True)
def test_library_loras_reach_runware_as_air_ids(user, route, tmp_path):
    name, fake, profile = route
    (tmp_path / "ink.safetensors").write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}abc")
    root = LibraryRoot.objects.create(path=str(tmp_path))
    LoraModel.objects.create(root=root, relative_path="ink.safetensors",
                             file_name="ink.safetensors", name="ink", sha256="ab" * 32,
                             autov3="cd" * 32, civitai_model_id=102438,
                             civitai_version_id=133677)
    job = _run(user, model=profile.slug, prompt="a fox <lora:ink:0.6>", width=512, height=512)
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    assert fake.last("/v1").json()[0]["lora"] == [{"model": "civitai:102438@133677",
                                                   "weight": 0.6}]


@pytest.mark.parametrize("route", ["gemini"], indirect=True)
def test_capabilities_are_checked_before_queuing(user, route):
    from core.exceptions import ApplicationError

    name, fake, profile = route
    with pytest.raises(ApplicationError) as err:
        generation_create(user=user, params={"prompt": "x", "model": profile.slug, "n": 9},
                          enqueue=False)
    assert err.value.status == 400 and "n" in err.value.fields
    assert fake.count() == 0


def _upload(name="src.png", size=(64, 64), color=(10, 120, 200), mode="RGB"):
    import io

    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, format="PNG")
    return SimpleUploadedFile(name, buf.getvalue(), content_type="image/png")


@pytest.mark.parametrize("route", ["sdnext", "openai"], indirect=True)
def test_edit_img2img_and_inpaint_run_through_remote_providers(user, route):
    from images.services.edit import edit_create

    name, fake, profile = route
    for mask in (None, _upload("mask.png", color=255, mode="L")):
        gen = edit_create(user=user, params={"prompt": "a blue fox", "model": profile.slug,
                                             "strength": 0.4, "width": 512, "height": 512},
                          image_upload=_upload(size=(512, 512)),
                          mask_upload=None if mask is None else _upload(
                              "mask.png", size=(512, 512), color=255, mode="L"),
                          enqueue=False)
        job = generation_run(request_id=gen.pk)
        assert job.status == Job.Status.SUCCEEDED, (job.error_code, job.error_message)
        assert len(job.result["images"]) == 1
    if name == "sdnext":
        body = fake.last("/sdapi/v1/img2img").json()
        assert body["denoising_strength"] == 0.4 and body["mask"]
    else:
        assert fake.count("/v1/images/edits") == 2


@pytest.mark.parametrize("route", ["sdnext", "replicate"], indirect=True)
def test_upscale_runs_through_remote_providers(user, route):
    from images.services.edit import upscale_create

    name, fake, profile = route
    upscaler = "R-ESRGAN 4x+" if name == "sdnext" else "someone/upscaler-x"
    gen = upscale_create(user=user, params={"factor": 2, "upscaler": upscaler,
                                            "model": profile.slug},
                         image_upload=_upload(size=(40, 24)), enqueue=False)
    job = generation_run(request_id=gen.pk)
    assert job.status == Job.Status.SUCCEEDED, (job.error_code, job.error_message)
    image = job.result["images"][0]
    assert (image["width"], image["height"]) == (80, 48)
    assert fake.count("/sdapi/v1/extra-single-image" if name == "sdnext"
                      else "/v1/models/someone/upscaler-x/predictions") == 1
