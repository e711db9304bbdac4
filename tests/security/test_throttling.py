"""Rate limits on generate (per user) and token login (per client address): 429 with
``Retry-After`` and the usual error body; other users and other endpoints are unaffected."""

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from images.models import GenerationRequest

pytestmark = pytest.mark.django_db


ADDRESSES = ("127.0.0.1", "10.1.2.3")


@pytest.fixture(autouse=True)
def _clean_counters(user, other_user):
    """Forget the throttle counters these tests use (only those keys: in Redis mode the cache
    shares its database with the Celery broker, so no ``cache.clear()``)."""
    keys = [f"throttle_generate_{u.pk}" for u in (user, other_user)]
    keys += [f"throttle_login_{a}" for a in ADDRESSES]
    cache.delete_many(keys)
    yield
    cache.delete_many(keys)


def _token_client(user):
    from rest_framework.authtoken.models import Token

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def _assert_throttled(response):
    assert response.status_code == 429, response.content
    body = response.json()
    assert body["code"] == "throttled" and body["message"], body
    assert 1 <= int(response["Retry-After"]) <= 60


def test_generate_is_throttled_per_user(settings, fake_profile, api_client, other_user):
    settings.THROTTLE_GENERATE_RATE = "3/min"
    # (Inside the test transaction nothing is published: on_commit never fires.)
    codes = [api_client.post("/api/generate/", {"prompt": "a kite"}, format="json").status_code
             for _ in range(3)]
    assert codes == [202, 202, 202]
    throttled = api_client.post("/api/generate/", {"prompt": "a kite"}, format="json")
    _assert_throttled(throttled)
    assert GenerationRequest.objects.count() == 3  # the refused one created nothing
    # Another user has their own budget; reads of the throttled user still work.
    assert _token_client(other_user).post(
        "/api/generate/", {"prompt": "a kite"}, format="json").status_code == 202
    assert api_client.get("/api/jobs/").status_code == 200


def test_token_login_is_throttled_per_address(settings, user):
    settings.THROTTLE_LOGIN_RATE = "5/min"
    client = APIClient()
    wrong = [client.post("/api/auth/token/", {"username": "alice", "password": "nope"},
                         format="json").status_code for _ in range(5)]
    assert wrong == [400] * 5
    # Even the right password is refused now: guessing cannot continue from this address.
    right = client.post("/api/auth/token/", {"username": "alice", "password": "pw-123456"},
                        format="json")
    _assert_throttled(right)
    # Another address is not affected.
    other = client.post("/api/auth/token/", {"username": "alice", "password": "pw-123456"},
                        format="json", REMOTE_ADDR="10.1.2.3")
    assert other.status_code == 200 and other.json()["token"]


def test_empty_rate_turns_throttling_off(settings, user):
    settings.THROTTLE_LOGIN_RATE = ""
    client = APIClient()
    codes = {client.post("/api/auth/token/", {"username": "alice", "password": "pw-123456"},
                         format="json").status_code for _ in range(30)}
    assert codes == {200}


def test_rates_come_from_the_environment(monkeypatch):
    """base.py reads THROTTLE_* from the environment (documented in the README)."""
    import subprocess
    import sys

    code = ("import django, os; django.setup(); from django.conf import settings; "
            "print(settings.THROTTLE_GENERATE_RATE, settings.THROTTLE_LOGIN_RATE)")
    env = {**__import__("os").environ, "DJANGO_SETTINGS_MODULE": "config.settings.local",
           "THROTTLE_GENERATE_RATE": "7/hour", "THROTTLE_LOGIN_RATE": "2/min"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.split() == ["7/hour", "2/min"], out.stderr[-2000:]
