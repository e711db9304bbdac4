"""Civitai update check (issue 11, item 4; docs/library.md#civitai-update-check) against the
fake Civitai over real HTTP: a newer version exists, one is ignored, one is for another base
model -> exactly the right LoRAs flagged; the one-click download lands next to the old file;
manual relink by URL or id; the beat entry and the job."""

import os

import pytest
from django.conf import settings as django_settings

from jobs.models import Job
from loras.models import LoraModel
from loras.services import library_roots_sync, lora_register
from loras.services.updates import (
    UPDATE_CHECK_KIND,
    lora_update_ignore,
    update_check_run,
    update_check_start,
)
from loras.tasks_updates import lora_update_check_scheduled
from tests.support.fake_civitai import (  # noqa: F401
    fake_civitai,
    fake_civitai_server,
    safetensors_bytes,
)
from tests.support.wait import wait_for_job

MODELS = "/api/v1/models/"


@pytest.fixture
def library(settings, tmp_path):
    root = tmp_path / "library"
    root.mkdir()
    settings.LORA_ROOTS = [str(root)]
    settings.LORA_SCAN_WORKERS = 1
    library_roots_sync()
    return root


def published_model(fake, model_id: int, versions: list[tuple[int, str]], *, seed: int):
    """Publish ``versions`` ([(version id, base model)], newest first) of one model; returns
    the file bytes of each version by id. The model lists them newest first, as Civitai does."""
    datas, jsons = {}, []
    for n, (version_id, base) in enumerate(versions):
        data = safetensors_bytes(seed=seed * 100 + n)
        version = fake.add_version(version_id=version_id, model_id=model_id, data=data,
                                   base_model=base, trained_words=(f"w{version_id}",),
                                   file_name=f"m{model_id}_v{version_id}.safetensors")
        version["publishedAt"] = f"2025-0{len(versions) - n}-01T00:00:00.000Z"
        datas[version_id], jsons = data, [*jsons, version]
    fake.models[model_id]["modelVersions"] = jsons
    return datas


def lora_of(library, fake, version_id: int, data: bytes, name: str, folder: str = ""):
    """A LoRA file linked to its Civitai version as a refresh leaves it."""
    from loras.services.civitai import lora_civitai_refresh

    path = library / folder / f"{name}.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    lora = lora_civitai_refresh(lora=lora_register(path=str(path)))
    assert lora.civitai_version_id == version_id
    return lora


@pytest.fixture
def world(library, fake_civitai):
    """A: a newer SD 1.5 version (and an SDXL one) -> flagged. B: its newer version is ignored.
    C: the newer version is for another base model. D: already the newest. E: no Civitai."""
    a = published_model(fake_civitai, 100, [(1003, "SD 1.5"), (1002, "SDXL 1.0"),
                                            (1001, "SD 1.5")], seed=1)
    b = published_model(fake_civitai, 200, [(2002, "SD 1.5"), (2001, "SD 1.5")], seed=2)
    c = published_model(fake_civitai, 300, [(3002, "SDXL 1.0"), (3001, "SD 1.5")], seed=3)
    d = published_model(fake_civitai, 400, [(4001, "SD 1.5")], seed=4)
    loras = {"a": lora_of(library, fake_civitai, 1001, a[1001], "a", folder="style"),
             "b": lora_of(library, fake_civitai, 2001, b[2001], "b"),
             "c": lora_of(library, fake_civitai, 3001, c[3001], "c"),
             "d": lora_of(library, fake_civitai, 4001, d[4001], "d")}
    (library / "e.safetensors").write_bytes(safetensors_bytes(seed=99))
    loras["e"] = lora_register(path=str(library / "e.safetensors"))
    loras["b"] = lora_update_ignore(lora=loras["b"], version_id=2002)
    return loras


def flagged(api_client) -> list[str]:
    r = api_client.get("/api/loras/?update_available=true")
    assert r.status_code == 200, r.content
    return [item["name"] for item in r.json()["results"]]


@pytest.mark.django_db
def test_exactly_the_right_loras_are_flagged(world, fake_civitai, api_client, user):
    # A refresh has the model at hand: the state is already right before any check.
    assert flagged(api_client) == ["a"]
    LoraModel.objects.update(update_available=False, civitai_update={})
    before = fake_civitai.count(MODELS)
    job = update_check_start(user=user, enqueue=False)
    job = update_check_run(job_id=job.pk)
    assert job.status == Job.Status.SUCCEEDED, (job.error_code, job.error_message)
    assert fake_civitai.count(MODELS) - before == 4  # one call per model, not per LoRA
    assert job.result["flagged"] == 1 and job.result["checked"] == 4
    assert flagged(api_client) == ["a"]
    detail = api_client.get(f"/api/loras/{world['a'].pk}/").json()
    assert detail["update_available"] is True
    assert detail["civitai_update"]["version_id"] == 1003
    assert detail["civitai_update"]["base_model"] == "SD 1.5"
    assert api_client.get("/api/loras/?update_available=false").json()["count"] == 4
    # The page: a badge on the card and the filter.
    from django.test import Client

    page = Client()
    page.force_login(user)
    html = page.get("/loras/?update_available=true").content.decode()
    assert 'class="badge update"' in html and 'data-name="a"' in html
    assert 'data-name="b"' not in html
    assert 'id="download-update-btn"' in page.get(f"/loras/{world['a'].pk}/").content.decode()


@pytest.mark.django_db
def test_ignoring_the_version_or_the_model_clears_the_flag(world, api_client, user):
    update_check_run(job_id=update_check_start(user=user, enqueue=False).pk)
    a = world["a"]
    r = api_client.post(f"/api/loras/{a.pk}/update-ignore/", {"version_id": 1003},
                        format="json")
    assert r.status_code == 200 and r.json()["update_available"] is False
    # A later check does not flag the ignored version again ...
    update_check_run(job_id=update_check_start(user=user, enqueue=False).pk)
    assert flagged(api_client) == []
    # ... and ignoring the whole model sticks too.
    a.refresh_from_db()
    a.update_ignored_versions = []
    a.save()
    update_check_run(job_id=update_check_start(user=user, enqueue=False).pk)
    assert flagged(api_client) == ["a"]
    assert api_client.post(f"/api/loras/{a.pk}/update-ignore/", {"model": True},
                           format="json").json()["update_available"] is False
    update_check_run(job_id=update_check_start(user=user, enqueue=False).pk)
    assert flagged(api_client) == []
    assert api_client.post(f"/api/loras/{a.pk}/update-ignore/", {},
                           format="json").status_code == 400


@pytest.mark.django_db(transaction=True)
def test_the_button_queues_a_job_and_one_click_downloads_next_to_the_old_file(
        world, api_client, library, celery_worker):
    r = api_client.post("/api/loras/update-check/", {}, format="json")
    assert r.status_code == 202, r.content
    job = wait_for_job(r.json()["job"], timeout=30)
    assert job.status == Job.Status.SUCCEEDED and job.kind == UPDATE_CHECK_KIND
    a = world["a"]
    r = api_client.post(f"/api/loras/{a.pk}/download-update/", {}, format="json")
    assert r.status_code == 202, r.content
    job = wait_for_job(r.json()["job"], timeout=30)
    assert job.status == Job.Status.SUCCEEDED, (job.error_code, job.error_message)
    assert job.result["path"] == "style/m100_v1003.safetensors"  # next to style/a.safetensors
    assert os.path.isfile(library / "style" / "a.safetensors")
    new = LoraModel.objects.get(pk=job.result["lora"])
    assert (new.civitai_version_id, new.folder) == (1003, "style")
    # Nothing to download for a LoRA without a flagged update.
    r = api_client.post(f"/api/loras/{world['d'].pk}/download-update/", {}, format="json")
    assert r.status_code == 409 and r.json()["code"] == "no_update"


@pytest.mark.django_db
def test_a_second_check_while_one_is_queued_is_409_and_beat_queues_one(world, api_client,
                                                                       user, settings):
    assert "lora-update-check" in django_settings.CELERY_BEAT_SCHEDULE
    entry = django_settings.CELERY_BEAT_SCHEDULE["lora-update-check"]
    assert entry["task"] == "loras.update_check_scheduled" and entry["schedule"] == 86400
    first = update_check_start(user=user, enqueue=False)
    r = api_client.post("/api/loras/update-check/", {}, format="json")
    assert r.status_code == 409 and r.json()["code"] == "job_running"
    assert lora_update_check_scheduled() == "job_running"
    update_check_run(job_id=first.pk)
    job_id = lora_update_check_scheduled()  # the broker is the in-memory one in tests
    assert Job.objects.get(pk=job_id).kind == UPDATE_CHECK_KIND


@pytest.mark.django_db
def test_manual_relink_by_url_or_id(library, fake_civitai, api_client):
    data = safetensors_bytes(seed=50)
    published_model(fake_civitai, 500, [(5002, "Pony"), (5001, "Pony")], seed=5)
    path = library / "merged.safetensors"  # a re-saved file: Civitai knows no hash of it
    path.write_bytes(data)
    lora = lora_register(path=str(path))
    lora.trigger_words = ["mine"]
    lora.save()
    url = f"{fake_civitai.base_url}/models/500?modelVersionId=5001"
    r = api_client.post(f"/api/loras/{lora.pk}/civitai-link/", {"url": url}, format="json")
    assert r.status_code == 200, r.content
    body = r.json()
    assert (body["civitai_model_id"], body["civitai_version_id"]) == (500, 5001)
    assert body["trigger_words"] == ["mine", "w5001"] and body["base_model"] == "Pony"
    assert body["update_available"] is True and body["civitai_update"]["version_id"] == 5002
    assert (library / "merged.civitai.info").exists()
    r = api_client.post(f"/api/loras/{lora.pk}/civitai-link/", {"version_id": 5002},
                        format="json")
    assert r.json()["civitai_version_id"] == 5002 and r.json()["update_available"] is False
    r = api_client.post(f"/api/loras/{lora.pk}/civitai-link/", {"version_id": 999999},
                        format="json")
    assert r.status_code == 404 and r.json()["code"] == "civitai_not_found"
    r = api_client.post(f"/api/loras/{lora.pk}/civitai-link/",
                        {"url": "https://evil.example/models/1?modelVersionId=2"},
                        format="json")
    assert r.status_code == 400 and r.json()["code"] == "url_not_allowed"


def test_civitai_red_is_allowed_by_default():
    from config.settings import base

    assert {"civitai.com", "civitai.red"} <= set(base.OUTBOUND_ALLOWED_HOSTS)
