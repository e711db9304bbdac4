"""Celery workers killed with SIGKILL in the middle of a generation.

Real worker processes on a private Redis; the fake provider with 50 ms per step (``fake_slow``)
so the kill lands mid-generation. Timings are shortened through the environment of the
subprocesses: ``CELERY_VISIBILITY_TIMEOUT`` (seconds before Redis hands an unacknowledged
message to another worker) with ``CELERY_UNACKED_RESTORE_INTERVAL`` (seconds between checks),
``JOB_STALE_SECONDS`` and ``JOB_REAP_INTERVAL`` (the beat reaper).
"""

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from images.models import Image
from jobs.models import Job
from tests.factories import ModelProfileFactory, UserFactory
from tests.support.fake_civitai import fake_civitai_server  # noqa: F401
from tests.support.servers import ROOT, child_env, start_server
from tests.support.wait import wait_for_job, wait_until

from .conftest import Api, worker_process

pytestmark = pytest.mark.django_db(transaction=True)
BODY = {"prompt": "a slow lighthouse", "model": "slow", "steps": 40}


def _setup():
    UserFactory(username="faulty")
    ModelProfileFactory(slug="slow", provider="fake_slow", pipeline_type="fake")


def _running_at_step(job_id, step: int) -> Job:
    return wait_until(lambda: (job := Job.objects.get(pk=job_id)).status == Job.Status.RUNNING
                      and job.step >= step and job, timeout=60)


def _leftovers(media_root) -> list[str]:
    """Temporary or partial files anywhere under MEDIA_ROOT."""
    return [str(p) for p in Path(media_root).rglob("*")
            if p.is_file() and (p.name.endswith((".tmp", ".part")) or p.name.startswith("."))]


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


@pytest.mark.parametrize("victim", ["pool-child", "whole-worker"])
def test_killed_worker_job_is_redelivered_and_finishes(settings, tmp_path, redis_server, victim):
    """``pool-child``: the prefork child dies, the worker's main process sees WorkerLostError
    and requeues (``task_reject_on_worker_lost``). ``whole-worker``: the whole worker dies;
    the unacknowledged message goes back to the queue after the visibility timeout and a
    second worker runs it from step 0."""
    _setup()
    fast = {"CELERY_VISIBILITY_TIMEOUT": "6", "CELERY_UNACKED_RESTORE_INTERVAL": "1"}
    with contextlib.ExitStack() as stack:
        base = stack.enter_context(start_server(
            media_root=settings.MEDIA_ROOT, embedded=False,
            extra_env={"REDIS_URL": redis_server.url}))
        first = stack.enter_context(worker_process(
            media_root=settings.MEDIA_ROOT, redis_url=redis_server.url, log_dir=tmp_path,
            name="first", extra_env=fast))
        api = Api(base, "faulty")
        resp = api.post("/api/generate/", json=BODY)
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["job"]
        job = _running_at_step(job_id, 5)
        assert job.step < 40
        if victim == "pool-child":
            (child,) = wait_until(lambda: _children(first.proc.pid), timeout=10)
            os.kill(child, signal.SIGKILL)
        else:
            first.kill()
            assert Job.objects.get(pk=job_id).status == Job.Status.RUNNING
            stack.enter_context(worker_process(
                media_root=settings.MEDIA_ROOT, redis_url=redis_server.url, log_dir=tmp_path,
                name="second", extra_env=fast))
        job = wait_for_job(job_id, timeout=90)
        assert job.status == Job.Status.SUCCEEDED, (job.error_code, job.error_message)
        assert job.step == 40
    (image,) = Image.objects.filter(request__job_id=job_id)
    assert Path(image.file.path).stat().st_size > 0
    assert _leftovers(settings.MEDIA_ROOT) == []


def test_reaper_fails_a_job_whose_worker_died(settings, tmp_path, redis_server):
    """No second worker takes the message (default visibility timeout, an hour): celery beat
    runs the reaper every second and fails the job once it ran longer than JOB_STALE_SECONDS;
    the job never stays ``running``."""
    _setup()
    reaper_env = {"JOB_STALE_SECONDS": "3", "JOB_REAP_INTERVAL": "1"}
    with contextlib.ExitStack() as stack:
        base = stack.enter_context(start_server(
            media_root=settings.MEDIA_ROOT, embedded=False,
            extra_env={"REDIS_URL": redis_server.url}))
        doomed = stack.enter_context(worker_process(
            media_root=settings.MEDIA_ROOT, redis_url=redis_server.url, log_dir=tmp_path,
            name="doomed"))
        api = Api(base, "faulty")
        resp = api.post("/api/generate/", json={**BODY, "steps": 100})
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["job"]
        _running_at_step(job_id, 1)
        doomed.kill()
        assert Job.objects.get(pk=job_id).status == Job.Status.RUNNING
        # Beat and a worker for the reaper's queue; the lost message stays invisible to it.
        stack.enter_context(worker_process(
            media_root=settings.MEDIA_ROOT, redis_url=redis_server.url, log_dir=tmp_path,
            name="janitor", extra_env=reaper_env))
        env = child_env(media_root=settings.MEDIA_ROOT, embedded=False,
                        extra={"REDIS_URL": redis_server.url, **reaper_env})
        beat = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "WARNING",
             "-s", str(tmp_path / "beat-schedule")],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stack.callback(lambda: (beat.terminate(), beat.wait(timeout=20)))
        job = wait_for_job(job_id, timeout=60)
    assert job.status == Job.Status.FAILED
    assert job.error_code == "worker_lost"
    assert "stopped before it finished" in job.error_message
    assert not Image.objects.filter(request__job_id=job_id).exists()
    assert _leftovers(settings.MEDIA_ROOT) == []


@pytest.fixture
def civitai(fake_civitai_server):
    """The session's fake Civitai, reset (not the ``fake_civitai`` fixture: it clears the
    Django cache, which is the shared Redis when REDIS_URL is set)."""
    fake_civitai_server.reset()
    yield fake_civitai_server
    fake_civitai_server.reset()


def test_killed_worker_mid_download_resumes_on_another_worker(settings, tmp_path, redis_server,
                                                             civitai):
    """The fake Civitai serves a 2 MiB file slowly; the worker dies mid-transfer; a second
    worker gets the message again (visibility timeout), resumes from the ``.part`` with a Range
    request, and the LoRA appears whole; no ``.part`` stays."""
    from loras.models import LoraModel
    from loras.services import library_roots_sync
    from tests.support.fake_civitai import safetensors_bytes

    UserFactory(username="faulty")
    library = tmp_path / "library"
    library.mkdir()
    settings.LORA_ROOTS = [str(library)]
    library_roots_sync()
    data = safetensors_bytes(seed=21, floats=512 * 1024)  # 2 MiB
    civitai.add_version(version_id=321, model_id=3210, data=data,
                             file_name="dl_321.safetensors")
    civitai.chunk_size = 32 * 1024
    civitai.chunk_delay = 0.1  # 64 chunks: 6.4 s for the whole file
    env = {"REDIS_URL": redis_server.url, "CELERY_VISIBILITY_TIMEOUT": "6",
           "CELERY_UNACKED_RESTORE_INTERVAL": "1",
           "CIVITAI_BASE_URL": civitai.base_url, "OUTBOUND_ALLOW_PRIVATE": "1",
           "OUTBOUND_ALLOWED_HOSTS": "127.0.0.1,localhost", "LORA_ROOTS": str(library),
           "DOWNLOAD_PATH_TEMPLATE": "", "CIVITAI_BACKOFF_SECONDS": "0.01"}
    with contextlib.ExitStack() as stack:
        base = stack.enter_context(start_server(
            media_root=settings.MEDIA_ROOT, embedded=False, extra_env=env))
        first = stack.enter_context(worker_process(
            media_root=settings.MEDIA_ROOT, redis_url=redis_server.url, log_dir=tmp_path,
            name="dl-first", extra_env=env))
        api = Api(base, "faulty")
        resp = api.post("/api/downloads/", json={"model_version_id": 321, "folder": ""})
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["job"]["id"]
        part = library / "dl_321.safetensors.part"
        wait_until(lambda: part.exists() and part.stat().st_size >= 256 * 1024, timeout=60)
        first.kill()
        kept = part.stat().st_size
        assert 0 < kept < len(data)
        assert Job.objects.get(pk=job_id).status == Job.Status.RUNNING
        assert not (library / "dl_321.safetensors").exists()
        civitai.chunk_delay = 0.0
        stack.enter_context(worker_process(
            media_root=settings.MEDIA_ROOT, redis_url=redis_server.url, log_dir=tmp_path,
            name="dl-second", extra_env=env))
        job = wait_for_job(job_id, timeout=90)
    assert job.status == Job.Status.SUCCEEDED, (job.error_code, job.error_message)
    assert (library / "dl_321.safetensors").read_bytes() == data
    assert not part.exists()
    assert civitai.last("/files/").headers.get("Range", "").startswith("bytes=")
    assert LoraModel.objects.filter(file_name="dl_321.safetensors").count() == 1
