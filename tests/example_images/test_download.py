"""Bulk download of example images against the fake Civitai server over real HTTP:
pagination, NSFW filter, skip/force, 429 mid-job then recovery, restart mid-job then resume,
duplicate runs (409), pause/resume."""

from __future__ import annotations

import os
from collections import Counter

import pytest

from example_images.files import example_path
from example_images.models import ExampleImage
from example_images.services import download as services_download
from example_images.services.download import (
    example_download_pause,
    example_download_resume,
    example_download_run,
    example_download_start,
    example_downloads_resume,
)
from jobs.models import Job
from jobs.services import jobs_reap

pytestmark = pytest.mark.django_db


def _run_until_done(job, *, rounds: int = 10) -> Job:
    for _ in range(rounds):
        job = example_download_run(job_id=str(job.pk))
        if job.status != Job.Status.QUEUED:
            return job
    return job


def _image_fetches(fake) -> Counter:
    return Counter(r.path for r in fake.requests if r.path.startswith("/img/"))


def _assert_files(lora, expected: int) -> list[ExampleImage]:
    rows = list(ExampleImage.objects.filter(lora=lora))
    assert len(rows) == expected
    assert len({r.civitai_image_id for r in rows}) == expected
    for row in rows:
        assert row.file.startswith(f"{lora.sha256}/civitai-")
        assert os.path.isfile(example_path(row.file))
    # No temp file left behind.
    folder = example_path(lora.sha256)
    assert not [n for n in os.listdir(folder) if n.endswith(".tmp")]
    return rows


def test_pagination_limit_and_nsfw_filter(fake_civitai, published, user):
    lora = published("alpha", 101, images=7, nsfw_first=8)   # first image is X: filtered
    job = example_download_start(user=user, limit_per_model=5, nsfw_max=2, enqueue=False)
    job = _run_until_done(job)
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    rows = _assert_files(lora, 5)
    # Page size 3: image 0 skipped (nsfw 8), 1-2 on page 1, 3-5 on page 2 -> 5 images.
    assert sorted(r.civitai_image_id for r in rows) == [101001, 101002, 101003, 101004, 101005]
    listing = [r for r in fake_civitai.requests if r.path == "/api/v1/images"]
    assert len(listing) == 2
    assert "cursor=" in listing[1].query
    row = ExampleImage.objects.get(civitai_image_id=101001)
    assert (row.width, row.height, row.prompt, row.seed) == (8, 8, "sample 1", 1)
    assert job.result["images"] == 5 and job.result["processed_models"] == 1
    assert all(n == 1 for n in _image_fetches(fake_civitai).values())


def test_second_run_skips_present_and_force_adds_missing(fake_civitai, published, user):
    lora = published("beta", 102, images=6)
    job = _run_until_done(example_download_start(user=user, limit_per_model=2, enqueue=False))
    _assert_files(lora, 2)
    fetched = sum(_image_fetches(fake_civitai).values())
    job = _run_until_done(example_download_start(user=user, limit_per_model=4, enqueue=False))
    assert job.result["skipped_models"] == 1
    assert sum(_image_fetches(fake_civitai).values()) == fetched   # nothing fetched again
    job = _run_until_done(example_download_start(user=user, lora_ids=[lora.pk],
                                                 limit_per_model=4, force=True, enqueue=False))
    assert job.status == Job.Status.SUCCEEDED
    _assert_files(lora, 4)
    assert all(n == 1 for n in _image_fetches(fake_civitai).values())


def test_version_found_by_hash_when_not_linked(fake_civitai, published, user):
    lora = published("gamma", 103, images=2, link=False)
    job = _run_until_done(example_download_start(user=user, enqueue=False))
    assert job.status == Job.Status.SUCCEEDED
    _assert_files(lora, 2)
    assert fake_civitai.count("/api/v1/model-versions/by-hash/") == 1


def test_rate_limit_mid_job_pauses_then_recovers_without_losing_images(
        fake_civitai, published, user, settings):
    a = published("a1", 104, images=3)
    b = published("b1", 105, images=3)
    job = example_download_start(user=user, limit_per_model=3, enqueue=False)
    # LoRA a1 completes; then every request for b1's images is rate limited beyond the
    # client's retries (CIVITAI_MAX_RETRIES=3 in the fixture).
    fake_civitai.fail_next("/img/105-", status=429, count=8, retry_after="0")
    job = example_download_run(job_id=str(job.pk))
    assert job.status == Job.Status.QUEUED
    assert "rate limit" in job.message.lower()
    assert job.result["retries"] == 1
    _assert_files(a, 3)
    stored_b = set(ExampleImage.objects.filter(lora=b).values_list("civitai_image_id", flat=True))
    assert len(stored_b) < 3   # what was stored before the limit hit is kept
    before = _image_fetches(fake_civitai)
    job = _run_until_done(job)
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    _assert_files(a, 3)
    _assert_files(b, 3)
    # a1's images were never fetched again.
    fetches = _image_fetches(fake_civitai)
    assert all(fetches[f"/img/104-{i}.png"] == 1 for i in range(3))
    for image_id in stored_b:   # stored before the rate limit: never fetched again
        path = f"/img/105-{image_id - 105000}.png"
        assert fetches[path] == before[path]


def test_rate_limit_forever_fails_but_keeps_images(fake_civitai, published, user, settings):
    settings.EXAMPLE_IMAGES_MAX_RETRIES = 1
    a = published("a2", 106, images=2)
    published("b2", 107, images=2)
    fake_civitai.fail_next("/img/107-", status=429, count=1000, retry_after="0")
    job = _run_until_done(example_download_start(user=user, enqueue=False))
    assert job.status == Job.Status.FAILED
    assert job.error_code == "civitai_rate_limited"
    _assert_files(a, 2)


class _Crash(BaseException):
    """The process dies (not an error the job could handle)."""


def test_restart_mid_job_resumes_without_duplicates_or_losses(
        fake_civitai, published, user, monkeypatch):
    loras = [published(f"r{i}", 110 + i, images=5) for i in range(3)]
    job = example_download_start(user=user, limit_per_model=5, enqueue=False)
    real = services_download._row_create
    calls = {"n": 0}

    def crash_after_seven(**kwargs):
        calls["n"] += 1
        if calls["n"] == 7:   # the 7th file is written but its row never is
            raise _Crash()
        return real(**kwargs)

    monkeypatch.setattr(services_download, "_row_create", crash_after_seven)
    with pytest.raises(_Crash):
        example_download_run(job_id=str(job.pk))
    monkeypatch.setattr(services_download, "_row_create", real)
    assert Job.objects.get(pk=job.pk).status == Job.Status.RUNNING
    assert ExampleImage.objects.count() == 6
    # What `manage.py serve` does at start, then the worker-start hook.
    jobs_reap(older_than_seconds=0, statuses=("queued", "running", "paused"),
              code="server_restarted")
    assert Job.objects.get(pk=job.pk).status == Job.Status.FAILED
    resumed = example_downloads_resume(enqueue=False)
    assert [j.pk for j in resumed] == [job.pk]
    assert Job.objects.get(pk=job.pk).status == Job.Status.QUEUED
    job = _run_until_done(job)
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    for lora in loras:
        _assert_files(lora, 5)
    fetches = _image_fetches(fake_civitai)
    assert len(fetches) == 15 and set(fetches.values()) == {1}
    assert example_downloads_resume(enqueue=False) == []   # nothing left to resume


def test_duplicate_run_is_409(api_client, published):
    published("d1", 120, images=1)
    first = api_client.post("/api/example-images/download/", {}, format="json")
    assert first.status_code == 202
    assert first.json()["snapshot"]["kind"] == "example_images"
    second = api_client.post("/api/example-images/download/", {"limit_per_model": 2},
                             format="json")
    assert second.status_code == 409
    assert second.json()["code"] == "job_running"


def test_pause_and_resume_keep_state(fake_civitai, published, user, monkeypatch, api_client):
    loras = [published(f"p{i}", 130 + i, images=3) for i in range(2)]
    job = example_download_start(user=user, limit_per_model=3, enqueue=False)
    real = services_download._row_create

    def pause_after_first(**kwargs):
        row = real(**kwargs)
        if ExampleImage.objects.count() == 1:
            response = api_client.post("/api/example-images/pause/")
            assert response.status_code == 200
        return row

    monkeypatch.setattr(services_download, "_row_create", pause_after_first)
    job = example_download_run(job_id=str(job.pk))
    assert job.status == Job.Status.PAUSED
    status = api_client.get("/api/example-images/status/").json()
    assert status["status"] == "paused"
    assert status["job"]["id"] == str(job.pk)
    assert 1 <= status["result"]["images"] < 6
    # A paused job does nothing when its task runs again.
    assert example_download_run(job_id=str(job.pk)).status == Job.Status.PAUSED
    response = api_client.post("/api/example-images/resume/")
    assert response.status_code == 200 and response.json()["status"] == "queued"
    job = _run_until_done(job)
    assert job.status == Job.Status.SUCCEEDED
    for lora in loras:
        _assert_files(lora, 3)
    assert set(_image_fetches(fake_civitai).values()) == {1}


def test_pause_resume_when_nothing_runs_is_400(api_client, db):
    for url in ("/api/example-images/pause/", "/api/example-images/resume/"):
        response = api_client.post(url)
        assert response.status_code == 400
        assert response.json()["code"] == "download_not_running"
    assert api_client.get("/api/example-images/status/").json()["status"] == "idle"


def test_pause_of_queued_job_is_immediate(published, user):
    published("q1", 140, images=1)
    job = example_download_start(user=user, enqueue=False)
    assert example_download_pause().status == Job.Status.PAUSED
    job = example_download_resume(enqueue=False)
    assert job.status == Job.Status.QUEUED and not job.pause_requested


def test_optimize_stores_webp(fake_civitai, published, user, settings):
    settings.EXAMPLE_IMAGES_OPTIMIZE_MAX_DIM = 4
    lora = published("o1", 150, images=1)
    job = _run_until_done(example_download_start(user=user, optimize=True, enqueue=False))
    assert job.status == Job.Status.SUCCEEDED
    row = ExampleImage.objects.get(lora=lora)
    assert row.file.endswith(".webp") and (row.width, row.height) == (4, 4)
    with open(example_path(row.file), "rb") as fh:
        assert fh.read(12)[8:12] == b"WEBP"


def test_force_unknown_lora_is_404(api_client, db):
    response = api_client.post("/api/example-images/force/", {"lora_id": 999}, format="json")
    assert response.status_code == 404


def test_generic_job_pause_resume_actions(api_client, published, user):
    published("j1", 160, images=1)
    job = example_download_start(user=user, enqueue=False)
    response = api_client.post(f"/api/jobs/{job.pk}/pause/")
    assert response.status_code == 200 and response.json()["status"] == "paused"
    assert api_client.post(f"/api/jobs/{job.pk}/pause/").json()["status"] == "paused"
    response = api_client.post(f"/api/jobs/{job.pk}/resume/")
    assert response.status_code == 200 and response.json()["status"] == "queued"
    assert api_client.post(f"/api/jobs/{job.pk}/resume/").json()["code"] == "job_not_paused"
    job = _run_until_done(job)
    assert job.status == Job.Status.SUCCEEDED
    assert api_client.post(f"/api/jobs/{job.pk}/pause/").status_code == 409
    other = Job.objects.create(kind="generate", user=user)
    response = api_client.post(f"/api/jobs/{other.pk}/pause/")
    assert response.status_code == 400 and response.json()["code"] == "job_not_pausable"


def test_status_snapshot_has_progress_fields(api_client, published, user, fake_civitai):
    published("s1", 170, images=2)
    published("s2", 171, images=2)
    job = _run_until_done(example_download_start(user=user, enqueue=False))
    body = api_client.get("/api/example-images/status/").json()
    assert body["status"] == "succeeded" and body["job"]["id"] == str(job.pk)
    result = body["result"]
    assert result["processed_models"] == result["total_models"] == 2
    assert result["images"] == 4 and result["errors"] == [] and result["speed"] > 0
    assert body["job"]["result"] == result   # the same snapshot the WebSocket pushes
    assert body["job"]["progress"] == 1.0


def test_missing_image_is_an_error_not_a_failure(fake_civitai, published, user):
    lora = published("m1", 180, images=3)
    del fake_civitai.images["180-1.png"]
    job = _run_until_done(example_download_start(user=user, enqueue=False))
    assert job.status == Job.Status.SUCCEEDED
    assert len(job.result["errors"]) == 1 and "404" in job.result["errors"][0]["message"]
    _assert_files(lora, 2)
