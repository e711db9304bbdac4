from pathlib import Path

import pytest
from django.conf import settings
from PIL import Image as PILImage

from images.models import GenerationRequest, Image, UsageLog
from jobs.models import Job
from loras.models import LibraryRoot, LoraModel
from tests.factories import ModelProfileFactory
from tests.support.wait import wait_for_job

pytestmark = pytest.mark.django_db


def post(client, **body):
    return client.post("/api/generate/", {"prompt": "a lighthouse", **body}, format="json")


def test_generate_requires_auth(anon_client, fake_profile):
    resp = post(anon_client)
    assert resp.status_code == 401
    assert resp.json()["code"] == "not_authenticated"
    assert not GenerationRequest.objects.exists()


@pytest.mark.parametrize("body, field", [
    ({"width": 100}, "width"),
    ({"height": 7}, "height"),
    ({"steps": 0}, "steps"),
    ({"steps": 151}, "steps"),
    ({"n": 9}, "n"),
    ({"prompt": ""}, "prompt"),
    ({"prompt": "x" * 2001}, "prompt"),
    ({"guidance_scale": "lots"}, "guidance_scale"),
    ({"loras": [{"lora": "x", "weight": 99}]}, "loras"),
])
def test_validation_errors_name_the_field(api_client, fake_profile, body, field):
    resp = post(api_client, **body)
    assert resp.status_code == 400, resp.content
    data = resp.json()
    assert data["code"] == "invalid"
    assert field in data["fields"]
    assert data["message"]
    assert not Job.objects.exists()


def test_size_above_the_profile_limit_is_400(api_client, fake_profile):
    resp = post(api_client, width=1024)
    assert resp.status_code == 400
    assert resp.json()["fields"]["width"] == ["Must be at most 512 pixels for model 'fake'."]


def test_unknown_model_and_unknown_lora(api_client, fake_profile):
    resp = post(api_client, model="nope")
    assert resp.status_code == 400 and resp.json()["code"] == "unknown_model"
    assert "fake" in resp.json()["message"]
    resp = post(api_client, prompt="a cat <lora:missing:0.5>")
    assert resp.status_code == 400 and resp.json()["code"] == "unknown_lora"


def test_profile_of_an_unconfigured_provider_is_503(api_client, db):
    ModelProfileFactory(slug="ghost", provider="not-configured", is_default=False)
    resp = post(api_client, model="ghost")
    assert resp.status_code == 503
    assert resp.json()["code"] == "provider_unavailable"


def test_accepted_request_records_defaults_and_prompt_loras(api_client, fake_profile, tmp_path,
                                                           django_capture_on_commit_callbacks):
    lora_file = tmp_path / "ink.safetensors"
    lora_file.write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}abc")
    root = LibraryRoot.objects.create(path=str(tmp_path))
    lora = LoraModel.objects.create(root=root, relative_path="ink.safetensors",
                                    file_name="ink.safetensors", name="ink", sha256="ab" * 32,
                                    autov3="cd" * 32)
    with django_capture_on_commit_callbacks(execute=False):
        resp = post(api_client, prompt="a cat <lora:ink:0.7>", seed=-1)
    assert resp.status_code == 202, resp.content
    data = resp.json()
    assert data["status"] == "queued"
    assert data["status_url"] == f"/api/status/{data['id']}/"
    assert data["ws_url"] == f"/ws/jobs/{data['job']}/"
    assert Job.objects.get(pk=data["job"]).status == "queued"
    gen = GenerationRequest.objects.get(pk=data["id"])
    assert (gen.width, gen.height, gen.steps, gen.guidance_scale) == (64, 64, 4, 5.0)
    assert 0 <= gen.seed < 2**32
    assert gen.clean_prompt == "a cat"
    assert gen.loras == [{"lora_id": lora.pk, "name": "ink", "weight": 0.7, "te_weight": None,
                          "alias": "ink", "sha256": "ab" * 32, "short_hash": "cd" * 6}]


@pytest.mark.django_db(transaction=True)
def test_full_job_through_a_real_worker(api_client, fake_profile, celery_worker, user):
    resp = post(api_client, prompt="a red boat", seed=7, n=2, negative_prompt="fog")
    assert resp.status_code == 202
    job = wait_for_job(resp.json()["job"])
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    assert job.progress == 1.0 and job.step == job.total_steps == 4

    status = api_client.get(resp.json()["status_url"]).json()
    assert status["job"]["status"] == "succeeded"
    assert [img["seed"] for img in status["images"]] == [8, 7] or \
        sorted(img["seed"] for img in status["images"]) == [7, 8]
    first = Image.objects.get(request_id=resp.json()["id"], seed=7)
    path = Path(settings.MEDIA_ROOT) / first.file.name
    png = PILImage.open(path)
    assert png.format == "PNG" and png.size == (64, 64)
    assert png.text["parameters"].startswith("a red boat\nNegative prompt: fog\nSteps: 4, ")
    assert "Seed: 7, Size: 64x64, Model: Fake" in png.text["parameters"]
    thumb = PILImage.open(Path(settings.MEDIA_ROOT) / first.thumbnail.name)
    assert thumb.format == "WEBP"
    assert not list(Path(settings.MEDIA_ROOT).rglob("*.tmp"))

    log = UsageLog.objects.get(request_id=resp.json()["id"])
    assert (log.provider, log.image_count, log.user_id) == ("fake", 2, user.pk)
    assert log.duration_seconds > 0

    listed = api_client.get("/api/images/").json()
    assert listed["count"] == 2
    media = api_client.get(first.file.url)
    assert media.status_code == 200
    assert b"".join(media.streaming_content)[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.django_db(transaction=True)
def test_provider_failure_fails_the_job_with_its_message(api_client, fake_profile, celery_worker):
    resp = post(api_client, prompt="please <fail>")
    job = wait_for_job(resp.json()["job"])
    assert job.status == Job.Status.FAILED
    assert (job.error_code, job.error_message) == ("fake_failure",
                                                   "The fake provider was asked to fail.")
    assert api_client.get(f"/api/jobs/{job.pk}/").json()["error"]["code"] == "fake_failure"
    assert not Image.objects.exists()


def test_status_of_someone_elses_request_is_404(api_client, fake_profile, other_user,
                                                 django_capture_on_commit_callbacks):
    from images.services import generation_create

    with django_capture_on_commit_callbacks(execute=False):
        gen = generation_create(user=other_user, params={"prompt": "theirs"})
    assert api_client.get(f"/api/status/{gen.pk}/").status_code == 404
    assert api_client.get(f"/api/jobs/{gen.job_id}/").status_code == 404
    assert api_client.post(f"/api/jobs/{gen.job_id}/cancel/").status_code == 404
    assert api_client.get("/api/jobs/").json()["count"] == 0


def test_nested_lora_error_message_names_the_path(api_client, fake_profile):
    resp = post(api_client, loras=[{"lora": "a"}, {"lora": "b", "weight": 11}])
    assert resp.status_code == 400
    assert resp.json()["message"] == (
        "loras.1.weight: Ensure this value is less than or equal to 10.0.")
