"""A real server restart mid-download: the job a crash left ``running`` is failed by
``manage.py serve`` at start (in-memory broker lost) and then resumed by it, and the embedded
worker finishes it from the saved state against the fake Civitai, fetching no image twice."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from example_images.models import ExampleImage
from example_images.services import download as services_download
from example_images.services.download import example_download_run, example_download_start
from jobs.models import Job
from tests.support.servers import start_server

pytestmark = pytest.mark.django_db(transaction=True)


class _Crash(BaseException):
    pass


def test_server_restart_resumes_interrupted_download(published, user, settings, fake_civitai,
                                                     monkeypatch, tmp_path):
    loras = [published(f"rs{i}", 200 + i, images=3) for i in range(2)]
    job = example_download_start(user=user, limit_per_model=3, enqueue=False)
    real = services_download._row_create
    calls = {"n": 0}

    def crash_on_fourth(**kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise _Crash()
        return real(**kwargs)

    monkeypatch.setattr(services_download, "_row_create", crash_on_fourth)
    with pytest.raises(_Crash):
        example_download_run(job_id=str(job.pk))
    monkeypatch.setattr(services_download, "_row_create", real)
    assert Job.objects.get(pk=job.pk).status == Job.Status.RUNNING
    assert ExampleImage.objects.count() == 3
    env = {"LORA_TRASH_DIR": str(tmp_path / "trash"), "LORA_ROOTS": str(loras[0].root.path),
           "EXAMPLE_IMAGES_ROOT": str(settings.EXAMPLE_IMAGES_ROOT),
           "EXAMPLE_IMAGES_PAGE_SIZE": "3", "CIVITAI_BASE_URL": fake_civitai.base_url,
           "OUTBOUND_ALLOW_PRIVATE": "1", "OUTBOUND_ALLOWED_HOSTS": "127.0.0.1"}
    with start_server(media_root=settings.MEDIA_ROOT, embedded=True, extra_env=env):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = Job.objects.get(pk=job.pk).status
            if status in (Job.Status.SUCCEEDED, Job.Status.FAILED):
                break
            time.sleep(0.2)
    job = Job.objects.get(pk=job.pk)
    assert job.status == Job.Status.SUCCEEDED, (job.status, job.error_code, job.error_message)
    for lora in loras:
        assert ExampleImage.objects.filter(lora=lora).count() == 3
    fetches = Counter(r.path for r in fake_civitai.requests if r.path.startswith("/img/"))
    assert len(fetches) == 6 and set(fetches.values()) == {1}
