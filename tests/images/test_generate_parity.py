"""POST /api/generate/ with A1111's sampler, schedule type, clip skip, VAE and hires fix fields:
checked before queuing (400 naming the field and the allowed values, nothing queued), recorded
on the request and the image, and run on the real tiny diffusers model (no mocks)."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from images.models import GenerationRequest, Image
from images.services import generation_run
from jobs.models import Job
from providers import samplers as sm
from tests.factories import ModelProfileFactory

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore::UserWarning")]


def post(client, **body):
    return client.post("/api/generate/", {"prompt": "a lighthouse", **body}, format="json")


def run(client, capture, **body):
    """POST, then run the queued job here; returns (request, job, images)."""
    with capture(execute=False):
        resp = post(client, model="tiny", **body)
    assert resp.status_code == 202, resp.content
    seen = []
    job = generation_run(request_id=resp.json()["id"], listener=lambda s, t: seen.append((s, t)))
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    gen = GenerationRequest.objects.get(pk=resp.json()["id"])
    return gen, job, list(Image.objects.filter(request=gen).order_by("seed")), seen


def pixels(image: Image):
    with image.file.open("rb") as fh:
        return np.asarray(PILImage.open(fh).convert("RGB"))


# ----------------------------------------------------------------------------- checked first
@pytest.mark.parametrize("body, field, says", [
    ({"sampler": "Eulr"}, "sampler", "Unknown sampler 'Eulr'"),
    ({"sampler": "DPM++ 2S a"}, "sampler", "cannot run here"),
    ({"sampler_name": "k_dpm_fast"}, "sampler", "cannot run here"),
    ({"sampler": "Euler", "scheduler": "Karas"}, "scheduler", "Unknown schedule type"),
    ({"sampler": "Euler", "scheduler": "Align Your Steps"}, "scheduler", "cannot run here"),
    ({"sampler": "Euler a", "scheduler": "Karras"}, "scheduler", "not available"),
    ({"scheduler": "Karras"}, "sampler", "needs a sampler"),
    ({"vae": "nope.safetensors"}, "vae", "Unknown VAE"),
    ({"vae": "../etc/passwd"}, "vae", "Unknown VAE"),
    ({"enable_hr": True, "hr_upscaler": "ESRGAN_4x"}, "hr_upscaler", "Lanczos"),
    ({"enable_hr": True, "hr_scale": 4}, "hr_scale", "256x256"),
    ({"enable_hr": True, "steps": 2, "hr_second_pass_steps": 0, "denoising_strength": 0.3},
     "denoising_strength", "no step"),
])
def test_bad_a1111_fields_are_400_and_nothing_is_queued(api_client, fake_profile, settings,
                                                        tmp_path, body, field, says):
    settings.VAE_DIR = tmp_path
    fake_profile.max_width = fake_profile.max_height = 128
    fake_profile.save()
    jobs = Job.objects.count()
    resp = post(api_client, **body)
    assert resp.status_code == 400, resp.content
    data = resp.json()
    assert data["code"] == "invalid" and field in data["fields"], data
    assert says in data["fields"][field][0] and says in data["message"]
    assert Job.objects.count() == jobs and not GenerationRequest.objects.exists()


def test_unknown_sampler_names_the_allowed_values(api_client, fake_profile):
    data = post(api_client, sampler="Eulr").json()
    for label in sm.sampler_labels():
        assert label in data["fields"]["sampler"][0]


@pytest.mark.parametrize("body, field", [
    ({"clip_skip": 0}, "clip_skip"), ({"clip_skip": 13}, "clip_skip"),
    ({"hr_scale": 5}, "hr_scale"), ({"denoising_strength": 1.5}, "denoising_strength"),
    ({"hr_second_pass_steps": -1}, "hr_second_pass_steps"),
    ({"sampler": "Euler", "sampler_name": "Heun"}, "sampler_name"),
    ({"loras": [{"lora": "x", "te_weight": 11}]}, "loras"),
])
def test_field_ranges(api_client, fake_profile, body, field):
    resp = post(api_client, **body)
    assert resp.status_code == 400 and field in str(resp.json()["fields"]), resp.content
    assert not Job.objects.exists()


def test_hires_size_counts_against_request_max_pixels(api_client, fake_profile, settings):
    settings.REQUEST_MAX_PIXELS = 64 * 64 * 2
    assert post(api_client, width=64, height=64, n=2).status_code == 202
    resp = post(api_client, width=64, height=64, n=2, enable_hr=True, hr_scale=1.5)
    assert resp.status_code == 400 and resp.json()["code"] == "too_many_pixels"
    assert Job.objects.count() == 1


def test_fields_are_recorded_canonical(api_client, fake_profile,
                                       django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        resp = post(api_client, sampler_name="k_dpmpp_2m_sde", scheduler="karras", clip_skip=2,
                    enable_hr=True, hr_scale=1.5, hr_upscaler="lanczos",
                    hr_second_pass_steps=6, denoising_strength=0.5, steps=4)
    assert resp.status_code == 202, resp.content
    gen = GenerationRequest.objects.get(pk=resp.json()["id"])
    assert (gen.sampler, gen.scheduler, gen.clip_skip) == ("DPM++ 2M SDE", "Karras", 2)
    assert (gen.enable_hr, gen.hr_scale, gen.hr_upscaler, gen.hr_second_pass_steps,
            gen.hr_denoising_strength) == (True, 1.5, "Lanczos", 6, 0.5)
    assert gen.job.total_steps == 4 + 3  # the hires pass runs int(6 x 0.5) steps
    status = api_client.get(f"/api/status/{gen.pk}/").json()
    assert (status["sampler"], status["scheduler"], status["hr_upscaler"]) == (
        "DPM++ 2M SDE", "Karras", "Lanczos")
    # defaults: the model's sampler, Automatic, clip skip from the profile option
    fake_profile.options = {"clip_skip": 2}
    fake_profile.save()
    with django_capture_on_commit_callbacks(execute=False):
        gen = GenerationRequest.objects.get(pk=post(api_client).json()["id"])
    assert (gen.sampler, gen.scheduler, gen.clip_skip, gen.enable_hr, gen.hr_scale) == (
        "", "", 2, False, None)


def test_idempotency_key_compares_the_new_fields(api_client, fake_profile,
                                                 django_capture_on_commit_callbacks):
    headers = {"HTTP_IDEMPOTENCY_KEY": "k-1"}
    body = {"prompt": "a lighthouse", "sampler": "Euler a", "enable_hr": True}
    with django_capture_on_commit_callbacks(execute=False):
        first = api_client.post("/api/generate/", body, format="json", **headers)
        again = api_client.post("/api/generate/", {**body, "sampler": "k_euler_a"},
                                format="json", **headers)
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    for change in ({"sampler": "Euler"}, {"enable_hr": False}, {"hr_scale": 3},
                   {"clip_skip": 2}, {"scheduler": "Uniform"}):
        resp = api_client.post("/api/generate/", {**body, **change}, format="json", **headers)
        assert resp.status_code == 409, change
    assert GenerationRequest.objects.count() == 1


# ----------------------------------------------------------------------------- listings
def test_sampler_and_schedule_type_listings(api_client, settings, tmp_path):
    samplers = api_client.get("/api/samplers/").json()
    by_name = {s["name"]: s for s in samplers}
    for label in ("Euler", "Euler a", "Heun", "LMS", "DPM2", "DPM2 a", "DPM++ 2M",
                  "DPM++ 2M SDE", "DPM++ SDE", "DDIM", "UniPC", "LCM"):
        assert by_name[label]["supported"] is True
    assert by_name["DPM++ 2M"]["options"]["scheduler"] == "DPMSolverMultistepScheduler"
    assert by_name["DPM++ 2M"]["default_schedule_type"] == "Karras"
    assert "k_euler_a" in by_name["Euler a"]["aliases"]
    assert by_name["DPM++ 2S a"]["supported"] is False and by_name["DPM++ 2S a"]["reason"]
    schedules = {t["label"]: t for t in api_client.get("/api/schedulers/").json()}
    assert schedules["Karras"]["options"] == {"use_karras_sigmas": True}
    assert schedules["SGM Uniform"]["options"] == {"timestep_spacing": "trailing"}
    assert schedules["Exponential"]["supported"] and not schedules["KL Optimal"]["supported"]
    settings.VAE_DIR = tmp_path
    (tmp_path / "b.safetensors").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    assert api_client.get("/api/vaes/").json() == [{"name": "b.safetensors"}]


def test_listings_need_login(anon_client):
    for url in ("/api/samplers/", "/api/schedulers/", "/api/vaes/"):
        assert anon_client.get(url).status_code == 401


# ----------------------------------------------------------------------------- on the model
@pytest.mark.parametrize("label", sm.sampler_labels())
def test_each_sampler_runs_through_the_api(api_client, tiny, django_capture_on_commit_callbacks,
                                           label):
    gen, job, images, seen = run(api_client, django_capture_on_commit_callbacks, sampler=label,
                                 steps=2, seed=5)
    expected = sm.sampler_check(label)
    assert (images[0].sampler, images[0].scheduler) == expected
    assert f"Sampler: {label}," in images[0].parameters
    assert [s for s, _ in seen] == list(range(1, len(seen) + 1))  # every step once, in order


def test_same_seed_other_sampler_other_pixels(api_client, tiny,
                                              django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    euler = pixels(run(api_client, capture, sampler="Euler", seed=9)[2][0])
    euler_again = pixels(run(api_client, capture, sampler="euler", seed=9)[2][0])
    dpm = pixels(run(api_client, capture, sampler="DPM++ 2M", seed=9)[2][0])
    assert np.array_equal(euler, euler_again) and not np.array_equal(euler, dpm)


def test_hires_fix_64_to_128_in_one_job(api_client, tiny, django_capture_on_commit_callbacks):
    jobs = Job.objects.count()
    gen, job, images, seen = run(api_client, django_capture_on_commit_callbacks, width=64,
                                 height=64, steps=3, enable_hr=True, hr_scale=2,
                                 hr_second_pass_steps=4, denoising_strength=0.5)
    assert Job.objects.count() == jobs + 1
    assert [(i.width, i.height) for i in images] == [(128, 128)]
    total = 3 + int(4 * 0.5)
    assert job.total_steps == job.step == total and job.progress == 1.0
    assert [s for s, _ in seen] == list(range(1, total + 1)) and {t for _, t in seen} == {total}
    text = images[0].parameters
    assert "Size: 64x64" in text and "Hires upscale: 2" in text and "Denoising strength: 0.5" \
        in text


def test_clip_skip_and_vae_through_the_api(api_client, tiny, tiny_model, settings, tmp_path,
                                           django_capture_on_commit_callbacks):
    from tests.providers.test_samplers import _vae_file

    capture = django_capture_on_commit_callbacks
    settings.VAE_DIR = tmp_path
    _vae_file(Path(tiny_model), tmp_path / "soft.safetensors", scale=0.3)
    base = pixels(run(api_client, capture, seed=3)[2][0])
    gen, _, images, _ = run(api_client, capture, seed=3, clip_skip=2)
    assert gen.clip_skip == 2 and "Clip skip: 2" in images[0].parameters
    assert not np.array_equal(pixels(images[0]), base)
    gen, _, images, _ = run(api_client, capture, seed=3, vae="soft")
    assert gen.vae == str((tmp_path / "soft.safetensors").resolve())
    assert not np.array_equal(pixels(images[0]), base)
    assert api_client.get(f"/api/status/{gen.pk}/").json()["vae"] == "soft.safetensors"
    assert np.array_equal(pixels(run(api_client, capture, seed=3, vae="Automatic")[2][0]), base)


def test_hires_fix_with_an_upscale_model_profile(api_client, tiny, tmp_path_factory,
                                                 django_capture_on_commit_callbacks):
    from providers.demo_upscale import build_demo_upscale_model

    x4 = build_demo_upscale_model(tmp_path_factory.mktemp("x4") / "demo-sd-x4")
    ModelProfileFactory(slug="x4", provider="diffusers_local", pipeline_type="sd-upscale",
                        model_path=str(x4), is_default=False)
    resp = post(api_client, model="tiny", enable_hr=True, hr_upscaler="nope")
    assert resp.status_code == 400 and "Upscale model profiles: x4" in resp.json()["message"]
    gen, job, images, seen = run(api_client, django_capture_on_commit_callbacks, steps=3,
                                 n=2, seed=4, enable_hr=True, hr_scale=2, hr_upscaler="x4",
                                 hr_second_pass_steps=4, denoising_strength=0.5)
    assert [(i.width, i.height, i.seed) for i in images] == [(128, 128, 4), (128, 128, 5)]
    assert gen.hr_upscaler == "x4" and "Hires upscaler: x4" in images[0].parameters
    steps = [s for s, _ in seen]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)  # never back, never twice
    assert steps[-1] == seen[-1][1] == job.step == job.total_steps and job.progress == 1.0
    assert Job.objects.filter(kind="generate").count() == 1  # one job for all the passes
