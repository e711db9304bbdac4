"""Civitai refresh of one LoRA (sync API) and of the library (a resumable Job), against the
fake Civitai over real HTTP."""

import os
import time

import pytest

from jobs.models import Job
from loras.models import LoraModel
from loras.services import library_roots_sync, lora_register
from loras.services.civitai import civitai_refresh_all_create, civitai_refresh_all_run
from tests.support.fake_civitai import (  # noqa: F401
    fake_civitai,
    fake_civitai_server,
    safetensors_bytes,
)
from tests.support.wait import wait_for_job

BY_HASH = "/api/v1/model-versions/by-hash/"


@pytest.fixture
def library(settings, tmp_path):
    root = tmp_path / "library"
    root.mkdir()
    settings.LORA_ROOTS = [str(root)]
    library_roots_sync()
    return root


def make_lora(library, name: str, data: bytes, folder: str = "") -> LoraModel:
    path = library / folder / f"{name}.safetensors" if folder else library / f"{name}.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return lora_register(path=str(path))


def publish(fake, version_id: int, data: bytes, **kw) -> dict:
    return fake.add_version(version_id=version_id, model_id=version_id * 10, data=data, **kw)


@pytest.mark.django_db
def test_refresh_fills_fields_and_writes_preview(api_client, fake_civitai, library):
    data = safetensors_bytes(seed=1)
    publish(fake_civitai, 456, data, trained_words=("zzk style", "zzk"), base_model="Pony",
            tags=("style", "anime"), nsfw_level=2)
    lora = make_lora(library, "zzk", data, folder="styles")
    lora.tags = ["mine"]
    lora.save()

    response = api_client.post(f"/api/loras/{lora.pk}/civitai/refresh/")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["civitai_model_id"] == 4560 and body["civitai_version_id"] == 456
    assert body["trigger_words"] == ["zzk style", "zzk"]
    assert body["base_model"] == "Pony"
    assert body["nsfw_level"] == 2
    assert body["tags"] == ["mine", "style", "anime"]
    assert body["preview"] == "styles/zzk.preview.png"
    assert (library / "styles" / "zzk.preview.png").read_bytes() == \
        fake_civitai.images["456-0.png"]
    assert not [p for p in os.listdir(library / "styles") if p.endswith(".part")]
    lora.refresh_from_db()
    assert lora.civitai["id"] == 456 and lora.civitai["model"]["tags"] == ["style", "anime"]
    assert lora.license_flags["allowCommercialUse"] == ["Image", "RentCivit"]
    assert lora.last_checked_at is not None


@pytest.mark.django_db
def test_refresh_matches_by_autov3_when_the_header_changed(api_client, fake_civitai, library):
    published = safetensors_bytes(seed=2)
    edited = safetensors_bytes(seed=2, metadata={"ss_output_name": "renamed by a tool"})
    publish(fake_civitai, 77, published)
    lora = make_lora(library, "edited", edited)

    response = api_client.post(f"/api/loras/{lora.pk}/civitai/refresh/")

    assert response.status_code == 200, response.json()
    assert response.json()["civitai_version_id"] == 77
    paths = [r.path for r in fake_civitai.requests if r.path.startswith(BY_HASH)]
    assert paths == [BY_HASH + lora.sha256.upper(), BY_HASH + lora.autov3[:12].upper()]


@pytest.mark.django_db
def test_keeps_an_existing_preview(api_client, fake_civitai, library):
    data = safetensors_bytes(seed=3)
    publish(fake_civitai, 5, data)
    lora = make_lora(library, "kept", data)
    (library / "kept.png").write_bytes(b"user's own preview")

    assert api_client.post(f"/api/loras/{lora.pk}/civitai/refresh/").status_code == 200

    assert (library / "kept.png").read_bytes() == b"user's own preview"
    assert not (library / "kept.preview.png").exists()
    assert fake_civitai.count("/img/") == 0


@pytest.mark.django_db
def test_unknown_lora_is_404_and_remembered(api_client, fake_civitai, library):
    lora = make_lora(library, "private", safetensors_bytes(seed=4))

    first = api_client.post(f"/api/loras/{lora.pk}/civitai/refresh/")
    calls = fake_civitai.count(BY_HASH)
    second = api_client.post(f"/api/loras/{lora.pk}/civitai/refresh/")

    assert first.status_code == second.status_code == 404
    assert first.json()["code"] == "civitai_not_found"
    assert calls == 3  # SHA256, AutoV3 (12 hex), AutoV3 (64 hex)
    assert fake_civitai.count(BY_HASH) == calls  # the second refresh used the memory


@pytest.mark.django_db
def test_rate_limited_refresh_changes_nothing(api_client, fake_civitai, library):
    data = safetensors_bytes(seed=5)
    publish(fake_civitai, 9, data)
    lora = make_lora(library, "busy", data)
    LoraModel.objects.filter(pk=lora.pk).update(trigger_words=["mine"], tags=["t"],
                                                base_model="SD 1.5", nsfw_level=1)
    before = LoraModel.objects.values().get(pk=lora.pk)
    fake_civitai.fail_next(BY_HASH, status=429, count=4, retry_after="0")

    response = api_client.post(f"/api/loras/{lora.pk}/civitai/refresh/")

    assert response.status_code == 429
    assert response.json()["code"] == "civitai_rate_limited"
    assert int(response["Retry-After"]) >= 1
    assert LoraModel.objects.values().get(pk=lora.pk) == before
    assert sorted(os.listdir(library)) == ["busy.safetensors"]
    # the rate limit was not remembered as "not found"
    assert api_client.post(f"/api/loras/{lora.pk}/civitai/refresh/").status_code == 200


@pytest.mark.django_db
def test_long_retry_after_is_answered_not_waited(api_client, fake_civitai, library, settings):
    """The sync endpoint answers 429 + Retry-After instead of holding the request, and the
    pause is process-wide: the next refresh does not even reach Civitai."""
    settings.CIVITAI_MAX_RETRY_AFTER = 600.0
    settings.CIVITAI_SYNC_MAX_WAIT = 1.0
    lora = make_lora(library, "later", safetensors_bytes(seed=7))
    fake_civitai.fail_next(BY_HASH, status=429, retry_after="120")

    started = time.monotonic()
    first = api_client.post(f"/api/loras/{lora.pk}/civitai/refresh/")
    second = api_client.post(f"/api/loras/{lora.pk}/civitai/refresh/")

    assert time.monotonic() - started < 5
    assert first.status_code == second.status_code == 429
    assert 110 <= int(first["Retry-After"]) <= 120 and 100 <= int(second["Retry-After"]) <= 120
    assert fake_civitai.count(BY_HASH) == 1


@pytest.mark.django_db
def test_unavailable_refresh_is_503(api_client, fake_civitai, library):
    lora = make_lora(library, "down", safetensors_bytes(seed=6))
    fake_civitai.fail_next(BY_HASH, status=502, count=4)
    response = api_client.post(f"/api/loras/{lora.pk}/civitai/refresh/")
    assert response.status_code == 503 and response.json()["code"] == "civitai_unavailable"
    assert "Retry-After" in response


@pytest.mark.django_db
def test_refresh_unknown_lora_id_is_404(api_client, fake_civitai):
    assert api_client.post("/api/loras/999999/civitai/refresh/").status_code == 404


# -- refresh all ---------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_refresh_all_job_with_a_real_worker(api_client, fake_civitai, library, celery_worker):
    known = [safetensors_bytes(seed=10 + i) for i in range(2)]
    for i, data in enumerate(known):
        publish(fake_civitai, 100 + i, data)
    loras = [make_lora(library, f"k{i}", data) for i, data in enumerate(known)]
    unknown = make_lora(library, "unknown", safetensors_bytes(seed=99))
    done = make_lora(library, "done", safetensors_bytes(seed=98))
    LoraModel.objects.filter(pk=done.pk).update(civitai_version_id=1)

    response = api_client.post("/api/loras/civitai/refresh-all/", {}, format="json")

    assert response.status_code == 202, response.json()
    job = wait_for_job(response.json()["id"], timeout=30)
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    assert job.kind == "civitai_refresh"
    assert job.progress == 1.0 and job.step == job.total_steps == 3  # "done" was skipped
    assert job.result["updated"] == 2 and job.result["not_found"] == 1
    assert job.result["cursor"] == max(lora.pk for lora in [*loras, unknown])
    assert [LoraModel.objects.get(pk=lo.pk).civitai_version_id for lo in loras] == [100, 101]
    assert LoraModel.objects.get(pk=unknown.pk).civitai_version_id is None


@pytest.mark.django_db
def test_refresh_all_is_one_at_a_time(api_client, fake_civitai, library, user):
    civitai_refresh_all_create(user=user, enqueue=False)
    response = api_client.post("/api/loras/civitai/refresh-all/", {}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "job_running"


@pytest.mark.django_db
def test_refresh_all_resumes_after_its_cursor(fake_civitai, library, user):
    datas = [safetensors_bytes(seed=20 + i) for i in range(3)]
    for i, data in enumerate(datas):
        publish(fake_civitai, 200 + i, data)
    loras = [make_lora(library, f"r{i}", data) for i, data in enumerate(datas)]
    # the second LoRA's lookups stay rate limited: the first run stops after the first LoRA
    fake_civitai.fail_next(BY_HASH + loras[1].sha256.upper(), status=429, count=4,
                           retry_after="0")
    job = civitai_refresh_all_create(user=user, enqueue=False)

    job = civitai_refresh_all_run(job_id=str(job.pk))

    assert job.status == Job.Status.FAILED and job.error_code == "civitai_rate_limited"
    assert job.result["cursor"] == loras[0].pk and job.result["updated"] == 1
    assert LoraModel.objects.get(pk=loras[1].pk).civitai_version_id is None
    first_lookups = fake_civitai.count(BY_HASH + loras[0].sha256.upper())

    # run again (the dispatcher queues a job whose worker died): it continues after the cursor
    Job.objects.filter(pk=job.pk).update(status=Job.Status.QUEUED, error_code="")
    job = civitai_refresh_all_run(job_id=str(job.pk))

    assert job.status == Job.Status.SUCCEEDED
    assert job.result["updated"] == 3 and job.result["cursor"] == loras[2].pk
    assert fake_civitai.count(BY_HASH + loras[0].sha256.upper()) == first_lookups == 1
    assert [LoraModel.objects.get(pk=lo.pk).civitai_version_id for lo in loras] == \
        [200, 201, 202]


@pytest.mark.django_db
def test_refresh_all_only_given_ids_and_cancel(fake_civitai, library, user):
    datas = [safetensors_bytes(seed=30 + i) for i in range(2)]
    for i, data in enumerate(datas):
        publish(fake_civitai, 300 + i, data)
    loras = [make_lora(library, f"c{i}", data) for i, data in enumerate(datas)]

    job = civitai_refresh_all_create(user=user, lora_ids=[loras[1].pk], enqueue=False)
    job = civitai_refresh_all_run(job_id=str(job.pk))
    assert job.result["updated"] == 1
    assert LoraModel.objects.get(pk=loras[0].pk).civitai_version_id is None

    job = civitai_refresh_all_create(user=user, enqueue=False)
    Job.objects.filter(pk=job.pk).update(cancel_requested=True)
    job = civitai_refresh_all_run(job_id=str(job.pk))
    assert job.status == Job.Status.CANCELED
    assert LoraModel.objects.get(pk=loras[0].pk).civitai_version_id is None


@pytest.mark.django_db
def test_preview_respects_the_nsfw_setting(api_client, fake_civitai, library, settings):
    settings.CIVITAI_PREVIEW_MAX_NSFW_LEVEL = 2  # PG13 at most (bitmask PG=1, PG13=2, R=4...)
    data = safetensors_bytes(seed=8)
    publish(fake_civitai, 31, data, nsfw_level=8, image_count=2)  # first image X, second PG
    lora = make_lora(library, "spicy", data)

    assert api_client.post(f"/api/loras/{lora.pk}/civitai/refresh/").status_code == 200

    assert (library / "spicy.preview.png").read_bytes() == fake_civitai.images["31-1.png"]
    assert fake_civitai.count("/img/31-0.png") == 0
