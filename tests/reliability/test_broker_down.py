"""Redis (the Celery broker and channel layer) goes away and comes back while the server runs.

A real daphne server and a real worker process use a private ``redis-server`` that the test
kills (SIGKILL) and starts again, empty, on the same port.
"""

import json
import time

import pytest
from websockets.sync.client import connect

from jobs.models import Job
from tests.factories import ModelProfileFactory, UserFactory
from tests.support.servers import start_server
from tests.support.wait import wait_for_job

from .conftest import Api, worker_process

pytestmark = pytest.mark.django_db(transaction=True)
BODY = {"prompt": "a harbour at night", "model": "fake", "steps": 3}


def test_generate_answers_503_while_redis_is_down_and_recovers(settings, tmp_path,
                                                                redis_server):
    UserFactory(username="faulty")
    ModelProfileFactory(slug="fake", provider="fake", pipeline_type="fake")
    with (start_server(media_root=settings.MEDIA_ROOT, embedded=False,
                       extra_env={"REDIS_URL": redis_server.url,
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


def test_job_whose_message_died_with_redis_is_reaped(settings, redis_server):
    """No worker runs; Redis dies with the queued message (no persistence) and comes back
    empty. The beat reaper's task fails the job ``queue_lost`` once it waited longer than
    ``JOB_QUEUED_STALE_SECONDS``; a younger queued job is left alone."""
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
