"""Celery workers killed with SIGKILL in the middle of a generation.

Real worker processes on a private Redis, the job dispatcher as its own process
(``manage.py dispatch_jobs``); the fake provider with 50 ms per step (``fake_slow``) so the
kill lands mid-generation. Every process runs with the short leases of ``LEASE_ENV`` (a 3 s
lease renewed every second, a dispatcher pass every second): a job whose worker died is
re-queued (or failed ``worker_lost`` on its last attempt) by the dispatcher within
``JOB_LEASE_SECONDS + JOB_DISPATCH_INTERVAL``, not after Redis' visibility timeout (left at
its default, an hour, so only the dispatcher can bring the job back).
"""

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from images.models import Image
from jobs.models import Job
from tests.factories import ModelProfileFactory, UserFactory
from tests.support.fake_civitai import fake_civitai_server  # noqa: F401
from tests.support.servers import start_server
from tests.support.wait import wait_for_job, wait_until

from .conftest import LEASE_ENV, Api, dispatcher_process, worker_process
from .processes import DISPATCH_INTERVAL, LEASE_SECONDS

pytestmark = pytest.mark.django_db(transaction=True)
BODY = {"prompt": "a slow lighthouse", "model": "slow", "steps": 40}
# Seconds from the kill to the job being handed back: the lease runs out, the next pass sees
# it; plus room for a loaded 2-core machine.
HANDBACK_LIMIT = LEASE_SECONDS + DISPATCH_INTERVAL + 6.0


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


def _handed_back(job_id, token: str) -> float:
    """Wait until the dispatcher took job ``job_id`` from the dead worker holding ``token``
    (re-queued, claimed again or ended); return the seconds it took."""
    started = time.monotonic()
    wait_until(lambda: (job := Job.objects.get(pk=job_id)).worker != token
               or job.status != Job.Status.RUNNING, timeout=60, interval=0.05)
    return time.monotonic() - started


@pytest.mark.parametrize("victim, max_attempts", [
    ("pool-child", 3), ("whole-worker", 3), ("whole-worker", 1)])
def test_killed_worker_job_is_handed_back_by_the_dispatcher(settings, tmp_path, redis_server,
                                                            victim, max_attempts):
    """``pool-child``: the prefork child dies; the worker's main process re-queues the message
    (``task_reject_on_worker_lost``) but the job is still ``running`` under the dead child's
    lease, so that delivery does nothing. ``whole-worker``: the worker and its children die;
    the message stays unacknowledged in Redis for an hour. Either way the lease runs out, the
    dispatcher re-queues the job and publishes its task again, and a worker runs it from step
    0 — or, on its last attempt (``JOB_MAX_ATTEMPTS=1``), fails it ``worker_lost`` with no
    image and no leftover file."""
    _setup()
    env = {**LEASE_ENV, "REDIS_URL": redis_server.url, "JOB_MAX_ATTEMPTS": str(max_attempts)}
    with contextlib.ExitStack() as stack:
        stack.enter_context(dispatcher_process(
            media_root=settings.MEDIA_ROOT, redis_url=redis_server.url, log_dir=tmp_path,
            extra_env=env))
        base = stack.enter_context(start_server(
            media_root=settings.MEDIA_ROOT, embedded=False, extra_env=env))
        first = stack.enter_context(worker_process(
            media_root=settings.MEDIA_ROOT, redis_url=redis_server.url, log_dir=tmp_path,
            name="first", extra_env=env))
        api = Api(base, "faulty")
        resp = api.post("/api/generate/", json=BODY)
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["job"]
        job = _running_at_step(job_id, 5)
        assert job.step < 40 and job.attempts == 1
        if victim == "pool-child":
            (child,) = wait_until(lambda: _children(first.proc.pid), timeout=10)
            assert job.worker.split(":")[1] == str(child)  # the child holds the lease
            os.kill(child, signal.SIGKILL)
        else:
            first.kill()
            assert Job.objects.get(pk=job_id).status == Job.Status.RUNNING
            stack.enter_context(worker_process(
                media_root=settings.MEDIA_ROOT, redis_url=redis_server.url, log_dir=tmp_path,
                name="second", extra_env=env))
        handback = _handed_back(job_id, job.worker)
        assert handback < HANDBACK_LIMIT, f"handed back after {handback:.1f}s"
        job = wait_for_job(job_id, timeout=60)
    if max_attempts == 1:
        assert (job.status, job.error_code) == (Job.Status.FAILED, "worker_lost")
        assert "attempt 1 of 1" in job.error_message
        assert not Image.objects.filter(request__job_id=job_id).exists()
        assert list(Path(settings.MEDIA_ROOT).rglob("*.png")) == []
    else:
        assert job.status == Job.Status.SUCCEEDED, (job.error_code, job.error_message)
        assert (job.step, job.attempts) == (40, 2)
        (image,) = Image.objects.filter(request__job_id=job_id)
        assert Path(image.file.path).stat().st_size > 0
        assert len(list(Path(settings.MEDIA_ROOT).rglob("*.png"))) == 1
    assert _leftovers(settings.MEDIA_ROOT) == []


@pytest.fixture
def civitai(fake_civitai_server):
    """The session's fake Civitai, reset (not the ``fake_civitai`` fixture: it clears the
    Django cache, which is the shared Redis when REDIS_URL is set)."""
    fake_civitai_server.reset()
    yield fake_civitai_server
    fake_civitai_server.reset()


def test_killed_worker_mid_download_resumes_on_another_worker(settings, tmp_path, redis_server,
                                                             dispatcher, civitai):
    """The fake Civitai serves a 2 MiB file slowly; the worker dies mid-transfer; the
    dispatcher re-queues the job once its lease ran out; a second worker resumes from the
    ``.part`` with a Range request, and the LoRA appears whole; no ``.part`` stays."""
    from loras.models import LoraModel
    from loras.services import library_roots_sync
    from tests.support.fake_civitai import safetensors_bytes

    UserFactory(username="faulty", is_staff=True)  # downloads: library managers
    library = tmp_path / "library"
    library.mkdir()
    settings.LORA_ROOTS = [str(library)]
    library_roots_sync()
    data = safetensors_bytes(seed=21, floats=512 * 1024)  # 2 MiB
    civitai.add_version(version_id=321, model_id=3210, data=data,
                             file_name="dl_321.safetensors")
    civitai.chunk_size = 32 * 1024
    civitai.chunk_delay = 0.1  # 64 chunks: 6.4 s for the whole file
    env = {**LEASE_ENV, "REDIS_URL": redis_server.url, "CIVITAI_BASE_URL": civitai.base_url,
           "OUTBOUND_ALLOW_PRIVATE": "1", "OUTBOUND_ALLOWED_HOSTS": "127.0.0.1,localhost",
           "LORA_ROOTS": str(library), "DOWNLOAD_PATH_TEMPLATE": "",
           "CIVITAI_BACKOFF_SECONDS": "0.01"}
    with contextlib.ExitStack() as stack:
        base = stack.enter_context(start_server(
            media_root=settings.MEDIA_ROOT, embedded=False, extra_env=env))
        first = stack.enter_context(worker_process(
            media_root=settings.MEDIA_ROOT, redis_url=redis_server.url, log_dir=tmp_path,
            name="dl-first", extra_env=env))
        api = Api(base, "faulty")
        resp = api.post("/api/downloads/", json={"model_version_id": 321, "folder": ""})
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["job"]
        assert isinstance(job_id, str) and resp.json()["status_url"]
        part = library / "dl_321.safetensors.part"
        wait_until(lambda: part.exists() and part.stat().st_size >= 256 * 1024, timeout=60)
        first.kill()
        kept = part.stat().st_size
        assert 0 < kept < len(data)
        dead = Job.objects.get(pk=job_id)
        assert dead.status == Job.Status.RUNNING
        assert not (library / "dl_321.safetensors").exists()
        civitai.chunk_delay = 0.0
        stack.enter_context(worker_process(
            media_root=settings.MEDIA_ROOT, redis_url=redis_server.url, log_dir=tmp_path,
            name="dl-second", extra_env=env))
        handback = _handed_back(job_id, dead.worker)
        assert handback < HANDBACK_LIMIT, f"handed back after {handback:.1f}s"
        job = wait_for_job(job_id, timeout=90)
    assert job.status == Job.Status.SUCCEEDED, (job.error_code, job.error_message)
    assert job.attempts == 2
    assert (library / "dl_321.safetensors").read_bytes() == data
    assert not part.exists()
    assert civitai.last("/files/").headers.get("Range", "").startswith("bytes=")
    assert LoraModel.objects.filter(file_name="dl_321.safetensors").count() == 1
