"""The scale-out topology of docker/compose.yml with real processes: daphne, a worker on
``-Q default,io`` and a worker on ``-Q gpu --concurrency 1``, sharing Redis and the database.

Each generation must run on the worker of its provider's queue: the workers' INFO logs name the
task ids they received and finished (the task id is the job's ``celery_task_id``). The job
dispatcher runs too, and every process has the short leases of ``LEASE_ENV``: a live worker's
heartbeat keeps its lease, so no job is taken from it and run twice.
"""

import contextlib
import re

import pytest

from jobs.models import Job
from tests.factories import ModelProfileFactory, UserFactory
from tests.support.servers import start_server
from tests.support.wait import wait_for_job, wait_until

from .conftest import LEASE_ENV, Api, worker_process

pytestmark = pytest.mark.django_db(transaction=True)


def _ran(worker, task_id: str) -> bool:
    return bool(re.search(rf"Task images\.generation_run\[{task_id}\] succeeded",
                          worker.output()))


def test_each_queue_runs_on_its_own_worker(settings, tmp_path, redis_server, dispatcher):
    UserFactory(username="faulty")
    # fake_slow (default queue, 50 ms a step): 120 steps last 6 s, twice the lease.
    ModelProfileFactory(slug="cpu", provider="fake_slow", pipeline_type="fake")
    ModelProfileFactory(slug="gpu", provider="fake_gpu", pipeline_type="fake", is_default=False)
    with contextlib.ExitStack() as stack:
        base = stack.enter_context(start_server(
            media_root=settings.MEDIA_ROOT, embedded=False,
            extra_env={**LEASE_ENV, "REDIS_URL": redis_server.url}))
        general = stack.enter_context(worker_process(
            media_root=settings.MEDIA_ROOT, redis_url=redis_server.url, log_dir=tmp_path,
            name="general", queues="default,io", concurrency=2))
        gpu = stack.enter_context(worker_process(
            media_root=settings.MEDIA_ROOT, redis_url=redis_server.url, log_dir=tmp_path,
            name="gpubox", queues="gpu", concurrency=1))
        api = Api(base, "faulty")
        jobs = {}
        for model in ("cpu", "gpu", "cpu", "gpu"):
            resp = api.post("/api/generate/", json={"prompt": f"on {model}", "model": model,
                                                    "steps": 120})
            assert resp.status_code == 202, resp.text
            jobs.setdefault(model, []).append(resp.json()["job"])
        finished = {model: [wait_for_job(j, timeout=60) for j in ids]
                    for model, ids in jobs.items()}
        for model, worker, other in (("cpu", general, gpu), ("gpu", gpu, general)):
            for job in finished[model]:
                assert job.status == Job.Status.SUCCEEDED, job.error_message
                assert job.attempts == 1  # the heartbeat kept the lease: never re-queued
                wait_until(lambda w=worker, j=job: _ran(w, j.celery_task_id), timeout=10)
                assert not _ran(other, job.celery_task_id)
        assert "gpubox@" in gpu.output() and "general@" in general.output()
