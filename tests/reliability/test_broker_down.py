"""Redis (the Celery broker and channel layer) goes away and comes back while the server runs.

A real web server, real worker processes and the job dispatcher (``manage.py dispatch_jobs``)
use a private ``redis-server`` without persistence that the test kills (SIGKILL) and starts
again, empty, on the same port; every process runs with the short leases of ``LEASE_ENV``.
"""

import json
import time

import pytest
import redis
from websockets.sync.client import connect

from jobs.models import Job
from tests.factories import ModelProfileFactory, UserFactory
from tests.support.servers import start_server
from tests.support.wait import wait_for_job

from .conftest import LEASE_ENV, Api, worker_process

pytestmark = pytest.mark.django_db(transaction=True)
BODY = {"prompt": "a harbour at night", "model": "fake", "steps": 3}


def test_generate_answers_503_while_redis_is_down_and_recovers(settings, tmp_path,
                                                                redis_server, dispatcher):
    UserFactory(username="faulty")
    ModelProfileFactory(slug="fake", provider="fake", pipeline_type="fake")
    with (start_server(media_root=settings.MEDIA_ROOT, embedded=False,
                       extra_env={**LEASE_ENV, "REDIS_URL": redis_server.url,
                                  # throttles on, as in production: counters in Redis too
                                  "THROTTLE_GENERATE_RATE": "1000/min"}) as base,
          worker_process(media_root=settings.MEDIA_ROOT, redis_url=redis_server.url,
                         log_dir=tmp_path, name="w1")):
        api = Api(base, "faulty")
        before = api.post("/api/generate/", json=BODY)
        assert before.status_code == 202, before.text
        assert wait_for_job(before.json()["job"]).status == Job.Status.SUCCEEDED

        redis_server.stop()
        started = time.monotonic()
        down = api.post("/api/generate/", json=BODY)
        elapsed = time.monotonic() - started
        assert down.status_code == 503, down.text
        assert down.json()["code"] == "broker_unavailable"
        assert elapsed < 5.0, f"the 503 took {elapsed:.1f}s"
        # No job waits forever for a message that was never published.
        assert not Job.objects.filter(status=Job.Status.QUEUED).exists()
        lost = Job.objects.get(status=Job.Status.FAILED)
        assert lost.error_code == "broker_unavailable"
        # Reads that need no broker still work.
        assert api.get(f"/api/jobs/{before.json()['job']}/").status_code == 200

        redis_server.start()
        time.sleep(3.0)  # dispatcher passes with Redis back: the failed job stays failed
        assert Job.objects.get(pk=lost.pk).status == Job.Status.FAILED
        after = api.post("/api/generate/", json=BODY)
        assert after.status_code == 202, after.text
        job = wait_for_job(after.json()["job"], timeout=60)
        assert job.status == Job.Status.SUCCEEDED, job.error_message

        # A WebSocket client that (re)connects gets the current snapshot first.
        ws_base = base.replace("http://", "ws://")
        with connect(f"{ws_base}{after.json()['ws_url']}?token={api.token}",
                     additional_headers={"Origin": base}, open_timeout=10) as ws:
            first = json.loads(ws.recv(timeout=10))
        assert first["type"] == "job"
        assert first["job"]["id"] == str(job.pk) and first["job"]["status"] == "succeeded"
        assert first["job"]["seq"] == job.seq


def _queued_messages(redis_server) -> int:
    """Messages waiting in the private Redis' ``default`` queue list."""
    return redis.Redis.from_url(redis_server.url).llen("default")


def test_job_whose_message_died_with_redis_is_published_again(settings, tmp_path, redis_server,
                                                              dispatcher):
    """No worker runs; Redis dies with the queued message (no persistence) and comes back
    empty. The dispatcher finds the queued job's message in no queue and publishes the task
    again once the job waited ``JOB_REPUBLISH_AFTER_SECONDS``; a worker started afterwards
    runs it, once."""
    UserFactory(username="faulty")
    ModelProfileFactory(slug="fake", provider="fake", pipeline_type="fake")
    env = {**LEASE_ENV, "REDIS_URL": redis_server.url}
    with start_server(media_root=settings.MEDIA_ROOT, embedded=False, extra_env=env) as base:
        api = Api(base, "faulty")
        resp = api.post("/api/generate/", json=BODY)
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["job"]
        assert _queued_messages(redis_server) == 1
        redis_server.stop()
        redis_server.start()
        assert _queued_messages(redis_server) == 0  # the message is gone
        restarted = time.monotonic()
        while not _queued_messages(redis_server):
            assert time.monotonic() - restarted < 15, "the task was not published again"
            time.sleep(0.1)
        assert Job.objects.get(pk=job_id).status == Job.Status.QUEUED
        with worker_process(media_root=settings.MEDIA_ROOT, redis_url=redis_server.url,
                            log_dir=tmp_path, name="late", extra_env=env):
            job = wait_for_job(job_id, timeout=60)
    assert job.status == Job.Status.SUCCEEDED, (job.error_code, job.error_message)
    assert job.attempts == 1
    assert job.generation_request.images.count() == 1


def test_reaper_is_the_last_resort_for_a_lost_message(settings, redis_server):
    """Without a dispatcher (a deployment that does not run ``dispatch_jobs``), the beat
    reaper's task still fails a job whose message died with Redis ``queue_lost``, once it
    waited longer than ``JOB_QUEUED_STALE_SECONDS``; a younger queued job is left alone."""
    from jobs.tasks import jobs_reap

    UserFactory(username="faulty")
    ModelProfileFactory(slug="fake", provider="fake", pipeline_type="fake")
    with start_server(media_root=settings.MEDIA_ROOT, embedded=False,
                      extra_env={"REDIS_URL": redis_server.url}) as base:
        api = Api(base, "faulty")
        old = api.post("/api/generate/", json=BODY)
        assert old.status_code == 202, old.text
        redis_server.stop()
        redis_server.start()
        time.sleep(4.0)
        young = api.post("/api/generate/", json=BODY)
        assert young.status_code == 202, young.text
        settings.JOB_QUEUED_STALE_SECONDS = 3
        assert jobs_reap() == 1
    lost, waiting = Job.objects.get(pk=old.json()["job"]), Job.objects.get(pk=young.json()["job"])
    assert (lost.status, lost.error_code) == (Job.Status.FAILED, "queue_lost")
    assert waiting.status == Job.Status.QUEUED
