"""WebSocket progress over the real channel layer (in-memory, or Redis with REDIS_URL)."""

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from rest_framework.authtoken.models import Token

from config.asgi import application
from images.services import generation_create
from tests.factories import ModelProfileFactory, UserFactory

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]
HEADERS = [(b"origin", b"http://localhost"), (b"host", b"localhost")]


@database_sync_to_async
def make_user(name):
    user = UserFactory(username=name)
    return user, Token.objects.create(user=user).key


@database_sync_to_async
def make_generation(user, enqueue=True, **params):
    ModelProfileFactory()
    return generation_create(user=user, params={"prompt": "a kite", **params}, enqueue=enqueue)


@database_sync_to_async
def wait_finished(job_id):
    """Let a job end before the test does, so no work spills into the next test."""
    from tests.support.wait import wait_for_job

    return wait_for_job(job_id)


async def connect(path):
    comm = WebsocketCommunicator(application, path, headers=HEADERS)
    connected, code = await comm.connect(timeout=5)
    return comm, connected, code


async def collect_until_finished(comm, timeout=30):
    events = []
    while True:
        message = await comm.receive_json_from(timeout=timeout)
        assert message["type"] == "job"
        events.append(message["job"])
        if message["job"]["status"] in ("succeeded", "failed", "canceled"):
            return events


async def test_anonymous_is_refused():
    comm, connected, code = await connect("/ws/jobs/")
    assert (connected, code) == (False, 4401)


async def test_bad_token_is_refused():
    comm, connected, code = await connect("/ws/jobs/?token=nope")
    assert (connected, code) == (False, 4401)


async def test_foreign_origin_is_refused():
    _, key = await make_user("alice")
    comm = WebsocketCommunicator(application, f"/ws/jobs/?token={key}",
                                 headers=[(b"origin", b"http://evil.example"),
                                          (b"host", b"localhost")])
    connected, _ = await comm.connect(timeout=5)
    assert connected is False


async def test_someone_elses_job_is_404():
    owner, _ = await make_user("alice")
    _, mallory_key = await make_user("mallory")
    gen = await make_generation(owner, enqueue=False)
    comm, connected, code = await connect(f"/ws/jobs/{gen.job_id}/?token={mallory_key}")
    assert (connected, code) == (False, 4404)


async def test_progress_events_arrive_in_order(celery_worker):
    user, key = await make_user("alice")
    # Connected before the job exists, the user's stream sees every event of it.
    all_jobs, ok, _ = await connect(f"/ws/jobs/?token={key}")
    assert ok
    gen = await make_generation(user, steps=6, n=1)
    events = await collect_until_finished(all_jobs)
    await all_jobs.disconnect()
    assert {e["id"] for e in events} == {str(gen.job_id)}
    assert [e["status"] for e in events][0] == "queued"
    assert events[-1]["status"] == "succeeded"
    assert events[-1]["result"]["images"][0]["url"].startswith("/media/images/")
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs)
    steps = [e["step"] for e in events if e["status"] == "running"]
    assert steps == sorted(steps) and steps[-1] == 6
    progress = [e["progress"] for e in events]
    assert progress == sorted(progress) and progress[-1] == 1.0

    # The job's own stream, joined afterwards, starts with the current (final) snapshot.
    comm, ok, _ = await connect(f"/ws/jobs/{gen.job_id}/?token={key}")
    assert ok
    first = await comm.receive_json_from(timeout=5)
    await comm.disconnect()
    assert first["job"] == events[-1]


async def test_reconnecting_client_gets_the_current_snapshot(celery_worker):
    user, key = await make_user("alice")
    gen = await make_generation(user, steps=3)
    comm, ok, _ = await connect(f"/ws/jobs/{gen.job_id}/?token={key}")
    await collect_until_finished(comm)
    await comm.disconnect()
    again, ok, _ = await connect(f"/ws/jobs/{gen.job_id}/?token={key}")
    first = await again.receive_json_from(timeout=5)
    await again.disconnect()
    assert first["job"]["status"] == "succeeded" and first["job"]["step"] == 3


async def test_other_users_jobs_do_not_reach_my_stream(celery_worker):
    alice, alice_key = await make_user("alice")
    bob, _ = await make_user("bob")
    comm, ok, _ = await connect(f"/ws/jobs/?token={alice_key}")
    theirs = await make_generation(bob, steps=2)
    mine = await make_generation(alice, steps=2)
    events = await collect_until_finished(comm)
    await comm.disconnect()
    await wait_finished(theirs.job_id)
    assert {e["id"] for e in events} == {str(mine.job_id)}
    assert str(theirs.job_id) not in {e["id"] for e in events}
