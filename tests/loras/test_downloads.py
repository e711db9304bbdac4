"""Downloads from the fake Civitai over real HTTP: redirect, progress, Range resume, sha256,
login-required files, existing files, cancel and the concurrency limit."""

import hashlib
import os

import pytest

from jobs.models import Job
from jobs.progress import ProgressReporter
from jobs.services import job_create
from loras.models import Download, LoraModel
from loras.services import library_roots_sync
from loras.services.downloads import download_create, download_folder, download_run
from tests.support.fake_civitai import (  # noqa: F401
    fake_civitai,
    fake_civitai_server,
    file_hashes_upper,
    safetensors_bytes,
)
from tests.support.wait import wait_for_job, wait_until

DL = "/api/download/models/"


@pytest.fixture
def library(settings, tmp_path):
    root = tmp_path / "library"
    root.mkdir()
    settings.LORA_ROOTS = [str(root)]
    settings.DOWNLOAD_PATH_TEMPLATE = "{base_model}/{first_tag}"
    settings.DOWNLOAD_CONCURRENCY = 2
    library_roots_sync()
    return root


def big_lora(seed: int, floats: int = 64 * 1024) -> bytes:
    return safetensors_bytes(seed=seed, floats=floats)  # 256 KiB of tensor data


def publish(fake, version_id: int, data: bytes, **kw) -> dict:
    kw.setdefault("file_name", f"dl_{version_id}.safetensors")
    return fake.add_version(version_id=version_id, model_id=version_id * 10, data=data, **kw)


def files_under(root) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), root)
                  for d, _, names in os.walk(root) for f in names)


@pytest.mark.django_db(transaction=True)
def test_download_by_version_id_with_a_real_worker(api_client, fake_civitai, library,
                                                    celery_worker):
    data = big_lora(1, floats=256 * 1024)  # 1 MiB
    publish(fake_civitai, 456, data, base_model="SDXL 1.0", tags=("character", "anime"),
            trained_words=("alice",))

    response = api_client.post("/api/downloads/", {"model_version_id": 456}, format="json")

    assert response.status_code == 202, response.json()
    job = wait_for_job(response.json()["job"], timeout=30)
    assert job.status == Job.Status.SUCCEEDED, (job.error_code, job.error_message)
    assert job.kind == "download"
    target = library / "SDXL 1.0" / "character" / "dl_456.safetensors"
    assert target.read_bytes() == data
    # The model, its Civitai preview and the sidecars other tools read (docs/library.md).
    assert files_under(library) == ["SDXL 1.0/character/dl_456.civitai.info",
                                    "SDXL 1.0/character/dl_456.json",
                                    "SDXL 1.0/character/dl_456.preview.png",
                                    "SDXL 1.0/character/dl_456.safetensors"]
    assert job.total_steps == len(data) and job.progress == 1.0
    assert job.result["path"] == "SDXL 1.0/character/dl_456.safetensors"
    assert job.result["sha256"] == hashlib.sha256(data).hexdigest()
    lora = LoraModel.objects.get(pk=job.result["lora"])
    assert lora.civitai_version_id == 456 and lora.trigger_words == ["alice"]
    assert lora.base_model == "SDXL 1.0" and lora.tags == ["character", "anime"]
    assert lora.sha256 == hashlib.sha256(data).hexdigest()
    assert lora.preview == "SDXL 1.0/character/dl_456.preview.png"
    # the 307 was followed, and the download asked for JSON errors
    assert fake_civitai.last(DL).headers["Content-Type"] == "application/json"
    assert fake_civitai.count("/files/dl_456.safetensors") == 1
    listing = api_client.get("/api/downloads/").json()
    assert listing["count"] == 1
    item = listing["results"][0]
    assert item["job"]["status"] == "succeeded" and item["lora"] == lora.pk
    assert item["downloaded_bytes"] == item["total_bytes"] == len(data)


@pytest.mark.django_db
def test_download_progress_reports_bytes_speed_and_eta(fake_civitai, library, user,
                                                       monkeypatch):
    """Every snapshot the job publishes is recorded (the real reporter runs unchanged)."""
    data = big_lora(2, floats=256 * 1024)
    publish(fake_civitai, 5, data)
    download = download_create(user=user, model_version_id=5, enqueue=False)
    seen = []
    original = ProgressReporter.step

    def recording(self, step, total, message=""):
        seen.append((step, total, message))
        return original(self, step, total, message)

    monkeypatch.setattr(ProgressReporter, "step", recording)
    job = download_run(download_id=download.pk)

    assert job.status == Job.Status.SUCCEEDED
    assert len(seen) >= 4  # one per 256 KiB chunk
    assert [s for s, _, _ in seen] == sorted(s for s, _, _ in seen)
    assert seen[-1][:2] == (len(data), len(data))
    assert "MiB/s" in seen[0][2] and "ETA" in seen[0][2]


@pytest.mark.django_db
def test_download_by_civitai_urls(fake_civitai, library, user):
    publish(fake_civitai, 456, big_lora(3))
    base = fake_civitai.base_url
    by_page = download_create(user=user, url=f"{base}/models/4560?modelVersionId=456",
                              enqueue=False)
    assert by_page.civitai_version_id == 456 and by_page.civitai_model_id == 4560
    Job.objects.filter(pk=by_page.job_id).update(status=Job.Status.FAILED)
    by_model = download_create(user=user, url=f"{base}/models/4560", enqueue=False)
    assert by_model.civitai_version_id == 456
    Job.objects.filter(pk=by_model.job_id).update(status=Job.Status.FAILED)
    by_file = download_create(user=user, url=f"{base}/api/download/models/456", enqueue=False)
    assert by_file.civitai_version_id == 456
    assert by_file.target_folder == "SDXL 1.0/character"


@pytest.mark.django_db
def test_download_api_refuses_bad_requests(api_client, fake_civitai, library):
    publish(fake_civitai, 456, big_lora(4))
    evil = api_client.post("/api/downloads/", {"url": "https://evil.example/models/1"},
                           format="json")
    assert evil.status_code == 400 and evil.json()["code"] == "url_not_allowed"
    assert api_client.post("/api/downloads/", {}, format="json").status_code == 400
    unknown = api_client.post("/api/downloads/", {"model_version_id": 999}, format="json")
    assert unknown.status_code == 404 and unknown.json()["code"] == "civitai_not_found"
    escape = api_client.post("/api/downloads/", {"model_version_id": 456, "folder": "../x"},
                             format="json")
    assert escape.status_code == 400 and escape.json()["code"] == "invalid_path"
    ok = api_client.post("/api/downloads/", {"model_version_id": 456, "folder": "mine/a"},
                         format="json")
    assert ok.status_code == 202 and ok.json()["download"]["target_folder"] == "mine/a"
    again = api_client.post("/api/downloads/", {"model_version_id": 456, "folder": "mine/a"},
                            format="json")
    assert again.status_code == 409 and again.json()["code"] == "already_downloading"


def test_folder_template_components_are_sanitized():
    folder = download_folder(template="{base_model}/{first_tag}/{author}",
                             version={"baseModel": "SD 1.5"},
                             model={"tags": ["../etc"], "creator": {"username": 'a:b*"c'}})
    assert folder == "SD 1.5/_etc/a_b_c"
    assert download_folder(template="{base_model}/{first_tag}", version={}, model=None) == ""


@pytest.mark.django_db
def test_download_resumes_a_partial_file_with_range(fake_civitai, library, user):
    data = big_lora(5, floats=256 * 1024)
    publish(fake_civitai, 6, data)
    download = download_create(user=user, model_version_id=6, folder="", enqueue=False)
    half = len(data) // 2 + 123
    (library / "dl_6.safetensors.part").write_bytes(data[:half])

    job = download_run(download_id=download.pk)

    assert job.status == Job.Status.SUCCEEDED, job.error_message
    assert fake_civitai.last("/files/").headers["Range"] == f"bytes={half}-"
    assert job.result["resumed_from"] == half
    assert (library / "dl_6.safetensors").read_bytes() == data
    assert not (library / "dl_6.safetensors.part").exists()


@pytest.mark.django_db
def test_broken_transfer_keeps_the_part_and_the_next_download_resumes(fake_civitai, library,
                                                                      user):
    data = big_lora(14, floats=256 * 1024)
    publish(fake_civitai, 15, data)
    fake_civitai.cut_after_bytes = 300_000
    first = download_create(user=user, model_version_id=15, folder="", enqueue=False)

    job = download_run(download_id=first.pk)

    assert job.status == Job.Status.FAILED and job.error_code == "download_interrupted"
    kept = (library / "dl_15.safetensors.part").read_bytes()
    assert 0 < len(kept) <= 300_000 and data.startswith(kept)  # whole chunks received
    assert not (library / "dl_15.safetensors").exists()

    second = download_create(user=user, model_version_id=15, folder="", enqueue=False)
    job = download_run(download_id=second.pk)

    assert job.status == Job.Status.SUCCEEDED, job.error_message
    assert fake_civitai.last("/files/").headers["Range"] == f"bytes={len(kept)}-"
    assert (library / "dl_15.safetensors").read_bytes() == data
    assert files_under(library) == ["dl_15.civitai.info", "dl_15.json", "dl_15.preview.png",
                                    "dl_15.safetensors"]


@pytest.mark.django_db
def test_complete_part_is_verified_and_kept(fake_civitai, library, user):
    data = big_lora(15)
    publish(fake_civitai, 16, data)
    download = download_create(user=user, model_version_id=16, folder="", enqueue=False)
    (library / "dl_16.safetensors.part").write_bytes(data)

    job = download_run(download_id=download.pk)

    assert job.status == Job.Status.SUCCEEDED, job.error_message
    assert job.result["resumed_from"] == len(data)  # the server answered 416
    assert (library / "dl_16.safetensors").read_bytes() == data


@pytest.mark.django_db
def test_sha256_mismatch_fails_and_leaves_no_file(fake_civitai, library, user):
    data = big_lora(6)
    hashes = {**file_hashes_upper(data), "SHA256": "AB" * 32}
    publish(fake_civitai, 7, data, hashes=hashes)
    download = download_create(user=user, model_version_id=7, folder="", enqueue=False)

    job = download_run(download_id=download.pk)

    assert job.status == Job.Status.FAILED and job.error_code == "sha256_mismatch"
    assert files_under(library) == []
    assert not LoraModel.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("kind,status", [("login_required", 401), ("early_access", 403)])
def test_login_required_file_gives_a_clear_error(fake_civitai, library, user, kind, status):
    publish(fake_civitai, 8, big_lora(7), **{kind: True})
    download = download_create(user=user, model_version_id=8, folder="", enqueue=False)

    job = download_run(download_id=download.pk)

    assert job.status == Job.Status.FAILED and job.error_code == "civitai_login_required"
    assert str(status) in job.error_message
    assert files_under(library) == []
    assert fake_civitai.count("/files/") == 0


@pytest.mark.django_db
def test_html_login_page_is_never_saved(fake_civitai, library, user):
    publish(fake_civitai, 9, big_lora(8), login_required=True)
    fake_civitai.ignore_json_header = True  # the server answers the HTML login redirect
    download = download_create(user=user, model_version_id=9, folder="", enqueue=False)

    job = download_run(download_id=download.pk)

    assert job.status == Job.Status.FAILED and job.error_code == "civitai_login_required"
    assert fake_civitai.count("/login") == 1  # the redirect was followed to the HTML page
    assert files_under(library) == []


@pytest.mark.django_db
def test_api_key_unlocks_a_login_required_file(fake_civitai, library, user, settings):
    data = big_lora(9)
    publish(fake_civitai, 10, data, login_required=True)
    fake_civitai.api_key = settings.CIVITAI_API_KEY = "secret-key"
    download = download_create(user=user, model_version_id=10, folder="", enqueue=False)

    job = download_run(download_id=download.pk)

    assert job.status == Job.Status.SUCCEEDED, job.error_message
    assert (library / "dl_10.safetensors").read_bytes() == data


@pytest.mark.django_db
def test_existing_file_is_never_overwritten(api_client, fake_civitai, library, user):
    publish(fake_civitai, 11, big_lora(10))
    (library / "dl_11.safetensors").write_bytes(b"precious")
    response = api_client.post("/api/downloads/", {"model_version_id": 11, "folder": ""},
                               format="json")
    assert response.status_code == 409 and response.json()["code"] == "file_exists"

    (library / "dl_11.safetensors").unlink()
    download = download_create(user=user, model_version_id=11, folder="", enqueue=False)
    (library / "dl_11.safetensors").write_bytes(b"precious")  # appears before the run
    job = download_run(download_id=download.pk)

    assert job.status == Job.Status.FAILED and job.error_code == "file_exists"
    assert (library / "dl_11.safetensors").read_bytes() == b"precious"
    assert files_under(library) == ["dl_11.safetensors"]


@pytest.mark.django_db
def test_concurrency_limit_keeps_extra_downloads_queued(fake_civitai, library, user, settings):
    settings.DOWNLOAD_CONCURRENCY = 1
    publish(fake_civitai, 12, big_lora(11))
    other = job_create(kind="download", user=user)
    Job.objects.filter(pk=other.pk).update(status=Job.Status.RUNNING)
    download = download_create(user=user, model_version_id=12, folder="", enqueue=False)

    job = download_run(download_id=download.pk)

    assert job.status == Job.Status.QUEUED and "Waiting" in job.message
    assert fake_civitai.count(DL) == 0
    Job.objects.filter(pk=other.pk).update(status=Job.Status.SUCCEEDED)
    assert download_run(download_id=download.pk).status == Job.Status.SUCCEEDED


@pytest.mark.django_db(transaction=True)
def test_waiting_download_is_requeued_until_a_slot_frees(api_client, fake_civitai, library,
                                                         user, settings, celery_worker):
    settings.DOWNLOAD_CONCURRENCY = 1
    settings.DOWNLOAD_REQUEUE_SECONDS = 0.1
    publish(fake_civitai, 14, big_lora(13))
    busy = job_create(kind="download", user=user)
    Job.objects.filter(pk=busy.pk).update(status=Job.Status.RUNNING)

    response = api_client.post("/api/downloads/", {"model_version_id": 14, "folder": ""},
                               format="json")
    job_id = response.json()["job"]
    wait_until(lambda: "Waiting" in Job.objects.get(pk=job_id).message, timeout=20)
    assert Job.objects.get(pk=job_id).status == Job.Status.QUEUED
    assert fake_civitai.count(DL) == 0

    Job.objects.filter(pk=busy.pk).update(status=Job.Status.SUCCEEDED)
    job = wait_for_job(job_id, timeout=20)
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    assert (library / "dl_14.safetensors").exists()


@pytest.mark.django_db(transaction=True)
def test_cancel_stops_the_download_and_removes_the_part(api_client, fake_civitai, library,
                                                         celery_worker):
    data = big_lora(12, floats=1024 * 1024)  # 4 MiB, 64 chunks of 64 KiB
    publish(fake_civitai, 13, data)
    fake_civitai.chunk_delay = 0.03  # about 2 s for the whole file
    response = api_client.post("/api/downloads/", {"model_version_id": 13, "folder": ""},
                               format="json")
    job_id = response.json()["job"]
    wait_until(lambda: Job.objects.get(pk=job_id).step > 0, timeout=20)
    assert (library / "dl_13.safetensors.part").exists()

    assert api_client.post(f"/api/jobs/{job_id}/cancel/").status_code == 200
    job = wait_for_job(job_id, timeout=20)

    assert job.status == Job.Status.CANCELED
    assert files_under(library) == []
    assert Download.objects.get(job_id=job_id).lora is None


@pytest.mark.django_db
def test_download_list_shows_only_your_downloads(api_client, fake_civitai, library, user,
                                                 other_user):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    publish(fake_civitai, 17, big_lora(16))
    download_create(user=user, model_version_id=17, enqueue=False)
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=other_user).key}")

    mine = api_client.get("/api/downloads/").json()
    theirs = other.get("/api/downloads/").json()

    assert mine["count"] == 1 and mine["results"][0]["job"]["status"] == "queued"
    assert mine["results"][0]["file_name"] == "dl_17.safetensors"
    assert theirs["count"] == 0
