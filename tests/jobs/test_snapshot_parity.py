"""One snapshot everywhere: the 202 answer's ``snapshot``, ``GET /api/jobs/<id>/``, the
``job`` of ``GET /api/status/<pk>/`` and the WebSocket's first event are the same JSON, field
for field (rounding and timestamp format included), for a job with fractional progress and
ETA and microsecond timestamps."""

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from config.asgi import application
from jobs.models import Job
from tests.factories import ModelProfileFactory, UserFactory

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


@database_sync_to_async
def rest_views():
    user = UserFactory(username="parity")
    token = Token.objects.create(user=user).key
    ModelProfileFactory()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    accepted = client.post("/api/generate/", {"prompt": "a kite"}, format="json")
    assert accepted.status_code == 202, accepted.content
    body = accepted.json()
    assert set(body) >= {"id", "job", "status", "status_url", "ws_url", "snapshot"}
    assert body["status"] == body["snapshot"]["status"] and body["job"] == body["snapshot"]["id"]
    # Let a worker (the session's, when one runs) finish it, then give it values that need
    # rounding: every view below reads the same row.
    from tests.support.wait import wait_for_job

    client.post(f"/api/jobs/{body['job']}/cancel/")
    wait_for_job(body["job"])
    Job.objects.filter(pk=body["job"]).update(progress=1 / 3, eta_seconds=12.345678, step=1,
                                              total_steps=3)
    job = client.get(f"/api/jobs/{body['job']}/").json()
    status = client.get(body["status_url"]).json()
    assert status["status"] == status["job"]["status"]
    return token, body, job, status["job"]


async def test_rest_202_status_and_websocket_carry_one_snapshot():
    token, accepted, job, from_status = await rest_views()
    comm = WebsocketCommunicator(application, f"{accepted['ws_url']}?token={token}",
                                 headers=[(b"origin", b"http://localhost"),
                                          (b"host", b"localhost")])
    connected, _ = await comm.connect(timeout=5)
    assert connected
    first = (await comm.receive_json_from(timeout=5))["job"]
    await comm.disconnect()
    assert job == from_status == first
    assert job["progress"] == 0.3333 and job["eta_seconds"] == 12.35
    assert job["created_at"].endswith("+00:00")
    # the 202 snapshot was taken before the update: same keys, same formats
    assert set(accepted["snapshot"]) == set(job)
    assert accepted["snapshot"]["created_at"] == job["created_at"]
