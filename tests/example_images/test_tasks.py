"""The API through a real Celery worker (embedded, in-memory broker): a download started
with ``POST /api/example-images/download/`` and a local generation both run to the end."""

from __future__ import annotations

import time

import pytest

from example_images.models import ExampleImage
from jobs.models import Job

pytestmark = pytest.mark.django_db(transaction=True)


def _wait(job_id: str, seconds: float = 30) -> Job:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if job.is_finished:
            return job
        time.sleep(0.05)
    return Job.objects.get(pk=job_id)


def test_download_and_generate_through_the_worker(celery_worker, api_client, published,
                                                  fake_profile):
    lora = published("w1", 190, images=4)
    response = api_client.post("/api/example-images/download/", {"limit_per_model": 3},
                               format="json")
    assert response.status_code == 202
    job = _wait(response.json()["id"])
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    assert ExampleImage.objects.filter(lora=lora, source="civitai").count() == 3
    response = api_client.post(f"/api/loras/{lora.pk}/example-images/generate/",
                               {"prompts": ["w1 style test"], "weights": [0.8]}, format="json")
    assert response.status_code == 202
    job = _wait(response.json()["id"])
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    generated = ExampleImage.objects.get(lora=lora, source="generated")
    assert generated.prompt == "w1 style test" and generated.meta["lora_weight"] == 0.8
