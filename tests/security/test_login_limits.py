"""Login is limited per account and per client address (issue #12), for the token endpoint and
the login form alike; the client address is X-Forwarded-For only behind TRUSTED_PROXIES."""

import uuid

import pytest
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from core.client_ip import client_ip
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
RIGHT = "pw-123456"


@pytest.fixture(autouse=True)
def _own_cache(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": f"login-limits-{uuid.uuid4().hex}"}}


@pytest.fixture
def alice(db):
    return UserFactory(username="alice")


def _token(client, username, password, **extra):
    return client.post("/api/auth/token/", {"username": username, "password": password},
                       format="json", **extra)


def _locked(response):
    assert response.status_code == 429, (response.status_code, response.content[:300])
    assert int(response["Retry-After"]) > 0
    return True


# ------------------------------------------------------------------ client address
def _request(remote, xff=None):
    meta = {"REMOTE_ADDR": remote}
    if xff is not None:
        meta["HTTP_X_FORWARDED_FOR"] = xff
    return RequestFactory().get("/", **meta)


def test_forwarded_for_is_ignored_without_trusted_proxies(settings):
    settings.TRUSTED_PROXIES = []
    assert client_ip(_request("203.0.113.9", "1.2.3.4")) == "203.0.113.9"


def test_forwarded_for_is_read_behind_a_trusted_proxy(settings):
    settings.TRUSTED_PROXIES = ["127.0.0.1", "10.0.0.0/8"]
    # The rightmost address that is not a trusted proxy is the client; what the client wrote
    # itself (further left) cannot choose the address.
    assert client_ip(_request("127.0.0.1", "6.6.6.6, 198.51.100.7, 10.1.1.1")) == "198.51.100.7"
    assert client_ip(_request("127.0.0.1", "198.51.100.7")) == "198.51.100.7"
    assert client_ip(_request("127.0.0.1")) == "127.0.0.1"
    assert client_ip(_request("127.0.0.1", "not-an-ip")) == "127.0.0.1"
    # A peer that is not a trusted proxy cannot forward anything.
    assert client_ip(_request("198.51.100.8", "1.2.3.4")) == "198.51.100.8"


def test_a_new_forwarded_for_each_time_does_not_evade_the_token_throttle(settings, alice):
    settings.THROTTLE_LOGIN_RATE = "3/min"
    settings.TRUSTED_PROXIES = []
    client = APIClient()
    codes = [_token(client, "alice", "nope", HTTP_X_FORWARDED_FOR=f"10.9.0.{i}").status_code
             for i in range(3)]
    assert codes == [400] * 3
    resp = _token(client, "alice", RIGHT, HTTP_X_FORWARDED_FOR="10.9.0.99")
    assert resp.status_code == 429 and resp.json()["code"] == "throttled"


def test_behind_a_trusted_proxy_each_client_has_its_own_budget(settings, alice):
    settings.THROTTLE_LOGIN_RATE = "2/min"
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    client = APIClient()
    for _ in range(2):
        _token(client, "alice", RIGHT, HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert _token(client, "alice", RIGHT,
                  HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 429
    assert _token(client, "alice", RIGHT,
                  HTTP_X_FORWARDED_FOR="198.51.100.2").status_code == 200


# ------------------------------------------------------------------ lockout (django-axes)
def test_token_login_locks_an_account_tried_from_many_addresses(settings, alice):
    settings.AXES_FAILURE_LIMIT = 3
    client = APIClient()
    codes = [_token(client, "alice", "nope", REMOTE_ADDR=f"10.7.0.{i}").status_code
             for i in range(3)]
    assert codes == [400, 400, 429]  # the third failure locks
    # The right password from yet another address: the account is locked for now.
    resp = _token(client, "alice", RIGHT, REMOTE_ADDR="10.7.0.200")
    assert _locked(resp)
    assert resp.json()["code"] == "locked_out" and resp.json()["message"]
    assert "token" not in resp.json()
    # Another account is not locked.
    UserFactory(username="carol")
    assert _token(client, "carol", RIGHT, REMOTE_ADDR="10.7.0.201").status_code == 200


def test_token_login_locks_an_address_trying_many_accounts(settings, alice):
    settings.AXES_FAILURE_LIMIT = 3
    client = APIClient()
    codes = [_token(client, name, "nope", REMOTE_ADDR="10.8.0.1").status_code
             for name in ("bob", "dave", "erin")]
    assert codes == [400, 400, 429]
    assert _locked(_token(client, "alice", RIGHT, REMOTE_ADDR="10.8.0.1"))
    assert _token(client, "alice", RIGHT, REMOTE_ADDR="10.8.0.2").status_code == 200


def test_login_form_is_locked_out_too(settings, alice):
    settings.AXES_FAILURE_LIMIT = 3
    client = Client()
    codes = [client.post("/accounts/login/", {"username": "alice", "password": "nope"})
             .status_code for _ in range(3)]
    assert codes == [200, 200, 429]  # the form again with its error, then the lockout page
    resp = client.post("/accounts/login/", {"username": "alice", "password": RIGHT})
    assert _locked(resp)
    assert b"Too many failed login attempts" in resp.content
    assert "_auth_user_id" not in client.session
    # The token endpoint shares the same lockout.
    assert _locked(_token(APIClient(), "alice", RIGHT, REMOTE_ADDR="10.3.3.3"))


def test_a_successful_login_clears_the_failures(settings, alice):
    settings.AXES_FAILURE_LIMIT = 3
    client = APIClient()
    for _ in range(2):
        _token(client, "alice", "nope")
    assert _token(client, "alice", RIGHT).status_code == 200
    for _ in range(2):
        _token(client, "alice", "nope")
    assert _token(client, "alice", RIGHT).status_code == 200
