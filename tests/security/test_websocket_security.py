"""WebSocket security beyond ``tests/jobs/test_consumers.py`` (anonymous, bad token, foreign
origin, someone else's job): a missing Origin, an inactive user's token, session cookies from a
foreign origin (cross-site WebSocket hijacking), unknown and malformed job ids, and messages that
try to reach other groups."""

import uuid

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from rest_framework.authtoken.models import Token

from config.asgi import application
from images.services import generation_create
from tests.factories import ModelProfileFactory, UserFactory

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]
SAME_ORIGIN = [(b"origin", b"http://localhost"), (b"host", b"localhost")]


@database_sync_to_async
def make_user(name, *, active=True):
    user = UserFactory(username=name)
    user.is_active = active
    user.save()
    return user, Token.objects.create(user=user).key


@database_sync_to_async
def session_cookie(user):
    """A Django session of ``user`` as the browser would send it."""
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session.save()
    return f"sessionid={session.session_key}".encode()


@database_sync_to_async
def make_job(user):
    ModelProfileFactory()
    return generation_create(user=user, params={"prompt": "a kite"}, enqueue=False).job_id


async def try_connect(path, headers):
    comm = WebsocketCommunicator(application, path, headers=headers)
    try:
        connected, code = await comm.connect(timeout=5)
    finally:
        await comm.disconnect()
    return connected, code


async def test_missing_origin_needs_a_token():
    """A script (no browser, so no Origin header) authenticates with ?token= and is accepted
    (issue 14); a session cookie without Origin is refused: the origin check is what stops
    another site's page from riding a browser's cookie."""
    user, key = await make_user("alice")
    connected, _ = await try_connect(f"/ws/jobs/?token={key}", [(b"host", b"localhost")])
    assert connected is True
    cookie = await session_cookie(user)
    refused, _ = await try_connect("/ws/jobs/", [(b"host", b"localhost"), (b"cookie", cookie)])
    assert refused is False
    bad_token, _ = await try_connect("/ws/jobs/?token=not-a-token", [(b"host", b"localhost")])
    assert bad_token is False


async def test_inactive_users_token_is_refused():
    _, key = await make_user("ghost", active=False)
    assert await try_connect(f"/ws/jobs/?token={key}", SAME_ORIGIN) == (False, 4401)


async def test_session_cookie_from_a_foreign_origin_is_refused():
    user, _ = await make_user("alice")
    cookie = await session_cookie(user)
    same = await try_connect("/ws/jobs/", [*SAME_ORIGIN, (b"cookie", cookie)])
    assert same[0] is True  # the session itself is valid ...
    foreign = await try_connect("/ws/jobs/", [(b"origin", b"https://evil.example"),
                                              (b"host", b"localhost"), (b"cookie", cookie)])
    assert foreign[0] is False  # ... but not from another site's page


async def test_unknown_job_is_4404():
    _, key = await make_user("alice")
    assert await try_connect(f"/ws/jobs/{uuid.uuid4()}/?token={key}", SAME_ORIGIN) == \
        (False, 4404)


@pytest.mark.parametrize("job", ["1", "not-a-uuid", "..%2F..%2Fadmin", "%00"])
async def test_malformed_job_id_is_4404(job):
    """Closed like an unknown job, not an unhandled "No route found" error in the server."""
    _, key = await make_user("alice")
    assert await try_connect(f"/ws/jobs/{job}/?token={key}", SAME_ORIGIN) == (False, 4404)


async def test_messages_cannot_join_other_groups():
    """The consumer only answers pings: a client asking for another user's job stream gets
    nothing, while that job's events go on."""
    from channels.layers import get_channel_layer

    from jobs.events import job_group, user_group

    alice, alice_key = await make_user("alice")
    bob, _ = await make_user("bob")
    bob_job = await make_job(bob)
    comm = WebsocketCommunicator(application, f"/ws/jobs/?token={alice_key}",
                                 headers=SAME_ORIGIN)
    connected, _ = await comm.connect(timeout=5)
    assert connected
    for message in ({"type": "subscribe", "job": str(bob_job)},
                    {"type": "join", "group": user_group(bob.pk)},
                    {"type": "job.update", "job": {"id": str(bob_job)}}):
        await comm.send_json_to(message)
    layer = get_channel_layer()
    await layer.group_send(job_group(str(bob_job)), {"type": "job.update",
                                                     "job": {"id": str(bob_job)}})
    await layer.group_send(user_group(bob.pk), {"type": "job.update",
                                                "job": {"id": str(bob_job)}})
    assert await comm.receive_nothing(timeout=0.5)
    await comm.send_json_to({"type": "ping"})
    assert await comm.receive_json_from(timeout=5) == {"type": "pong"}
    await comm.disconnect()
