"""Generate example images locally with the ``fake`` provider profile: prompt × weight,
results stored as example images with their parameters."""

from __future__ import annotations

import os

import pytest
from PIL import Image

from example_images.files import example_path
from example_images.models import ExampleImage
from example_images.services.generate import example_generate_run
from images.models import GenerationRequest
from jobs.models import Job

pytestmark = pytest.mark.django_db


def test_generate_plan_stores_examples(api_client, make_lora, fake_profile, settings):
    lora = make_lora("gen", trigger_words=("zzstyle", "ink"))
    response = api_client.post(f"/api/loras/{lora.pk}/example-images/generate/",
                               {"model": "fake", "weights": [0.5, 1.0], "seed": 42},
                               format="json")
    assert response.status_code == 202, response.json()
    job = Job.objects.get(pk=response.json()["id"])
    assert job.kind == "example_generate" and job.status == Job.Status.QUEUED
    plan = job.result["plan"]
    assert len(plan) == len(settings.EXAMPLE_IMAGES_GENERATE_PROMPTS) * 2
    assert all(p["prompt"].startswith("zzstyle, ink") for p in plan)
    job = example_generate_run(job_id=str(job.pk))
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    rows = list(ExampleImage.objects.filter(lora=lora).order_by("order"))
    assert len(rows) == len(plan)
    assert {r.source for r in rows} == {"generated"}
    assert sorted({r.meta["lora_weight"] for r in rows}) == [0.5, 1.0]
    for row in rows:
        assert row.seed == 42 and row.prompt.startswith("zzstyle, ink")
        assert os.path.isfile(example_path(row.file))
        with Image.open(example_path(row.file)) as img:
            assert img.size == (row.width, row.height) == (64, 64)
    # Each generation applied the LoRA at its weight.
    weights = sorted(r.loras[0]["weight"] for r in GenerationRequest.objects.all())
    assert weights == [0.5] * 3 + [1.0] * 3
    # Running the finished job again adds nothing.
    example_generate_run(job_id=str(job.pk))
    assert ExampleImage.objects.filter(lora=lora).count() == len(plan)
    listed = api_client.get(f"/api/loras/{lora.pk}/example-images/").json()
    assert "lora=gen%3A0.5" in listed[0]["use_url"] or "lora=gen%3A1" in listed[0]["use_url"]


def test_generate_failures_are_reported(api_client, make_lora, fake_profile):
    lora = make_lora("genfail")
    response = api_client.post(f"/api/loras/{lora.pk}/example-images/generate/",
                               {"prompts": ["<fail> please"], "weights": [1.0]}, format="json")
    assert response.status_code == 202
    job = example_generate_run(job_id=response.json()["id"])
    assert job.status == Job.Status.FAILED and job.error_code == "generation_failed"
    assert ExampleImage.objects.count() == 0


def test_generate_unknown_profile_is_400(api_client, make_lora, fake_profile):
    lora = make_lora("genbad")
    response = api_client.post(f"/api/loras/{lora.pk}/example-images/generate/",
                               {"model": "nope"}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "unknown_model"
    response = api_client.post(f"/api/loras/{lora.pk}/example-images/generate/",
                               {"weights": [1, 2, 3, 4, 5, 6], "prompts": list("abcde")},
                               format="json")
    assert response.status_code == 400
    assert api_client.post("/api/loras/9999/example-images/generate/", {},
                           format="json").status_code == 404
