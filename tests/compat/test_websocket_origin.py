"""WebSocket origin rule (config/asgi.py): a token without ``Origin`` is a non-browser client
and is accepted; a cookie session keeps the origin check."""

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from rest_framework.authtoken.models import Token

from config.asgi import application
from tests.factories import UserFactory

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]
HOST = (b"host", b"localhost")


@database_sync_to_async
def _user_with_token_and_session(name):
    user = UserFactory(username=name)
    browser = Client()
    browser.force_login(user)
    return Token.objects.create(user=user).key, browser.cookies["sessionid"].value


async def _connect(path, headers):
    comm = WebsocketCommunicator(application, path, headers=[HOST, *headers])
    connected, code = await comm.connect(timeout=5)
    if connected:
        await comm.disconnect()
    return connected, code


async def test_token_without_origin_is_accepted():
    key, _ = await _user_with_token_and_session("alice")
    assert (await _connect(f"/ws/jobs/?token={key}", []))[0] is True


async def test_bad_token_without_origin_is_4401():
    assert await _connect("/ws/jobs/?token=nope", []) == (False, 4401)


async def test_cookie_without_origin_is_refused_and_ignored_next_to_a_bad_token():
    _, session = await _user_with_token_and_session("alice")
    cookie = (b"cookie", f"sessionid={session}".encode())
    assert (await _connect("/ws/jobs/", [cookie]))[0] is False  # origin check: no Origin
    # With a (bad) token and no Origin the cookie is dropped: the session does not log it in
    assert await _connect("/ws/jobs/?token=nope", [cookie]) == (False, 4401)


async def test_cookie_from_another_origin_is_refused_from_ours_accepted():
    _, session = await _user_with_token_and_session("alice")
    cookie = (b"cookie", f"sessionid={session}".encode())
    evil = (b"origin", b"http://evil.example")
    assert (await _connect("/ws/jobs/", [cookie, evil]))[0] is False
    assert (await _connect("/ws/jobs/", [cookie, (b"origin", b"http://localhost")]))[0] is True
