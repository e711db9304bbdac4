"""Outbound HTTP hygiene (issue 12, item 3): every redirect hop passes the same guard as the
first request before it is requested, and no error echoes a remote body.

The red-team finding reproduced: the Civitai client followed a redirect to a loopback service
and put that service's body in its 403 message. Here a "Civitai" on ``localhost`` (the only
configured host, loopback allowed for it as tests allow their fakes) redirects to a
``127.0.0.1`` service holding a secret: it must never be requested, and the secret must not
appear in any answer. Real HTTP on loopback (pytest-httpserver), no mocks.
"""

from __future__ import annotations

import pytest
from pytest_httpserver import HTTPServer
from werkzeug.wrappers import Response

from core.exceptions import ApplicationError
from loras.civitai import CivitaiClient, limiter
from providers.base import ProviderError
from providers.http import RemoteClient

SECRET = "SECRET-7f3a-internal-admin-token"


@pytest.fixture(scope="module")
def internal():
    """A loopback service nobody configured: answers every request 403 with the secret."""
    server = HTTPServer(host="127.0.0.1")
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


@pytest.fixture
def secret_service(internal):
    internal.clear()
    internal.expect_request("/internal").respond_with_data(
        f'{{"error": "{SECRET}"}}', status=403, content_type="application/json")
    return f"http://127.0.0.1:{internal.port}/internal"


@pytest.fixture
def civitai(settings, httpserver):
    """``httpserver`` (on ``localhost``) as Civitai: the one configured host, loopback
    allowed for it."""
    from django.core.cache import cache

    for name, value in {"CIVITAI_BASE_URL": f"http://localhost:{httpserver.port}",
                        "CIVITAI_API_KEY": "k-secret", "OUTBOUND_ALLOWED_HOSTS": ["localhost"],
                        "OUTBOUND_ALLOW_PRIVATE": True, "CIVITAI_MAX_RETRIES": 1,
                        "CIVITAI_BACKOFF_SECONDS": 0.01}.items():
        setattr(settings, name, value)
    cache.clear()
    limiter.reset()
    yield httpserver
    limiter.reset()


def _redirect(server, path, location, status=302):
    server.expect_request(path).respond_with_response(
        Response("", status, headers={"Location": location}))


def test_civitai_metadata_redirect_to_an_unconfigured_loopback_service(
        civitai, secret_service, internal):
    _redirect(civitai, "/api/v1/models/1", secret_service)
    with pytest.raises(ApplicationError) as err:
        CivitaiClient().model_get(1)
    assert err.value.code == "url_not_allowed" and err.value.status == 400
    assert SECRET not in err.value.message
    assert not internal.log  # refused before it was requested


@pytest.mark.django_db
def test_the_same_through_the_api_never_answers_the_secret(
        civitai, secret_service, internal, api_client):
    _redirect(civitai, "/api/v1/models/1", secret_service)
    r = api_client.post("/api/downloads/", {"url": f"http://localhost:{civitai.port}/models/1"},
                        format="json")
    assert r.status_code == 400 and r.json()["code"] == "url_not_allowed", r.content
    assert SECRET.encode() not in r.content
    assert not internal.log


def test_civitai_download_redirect_to_an_unconfigured_loopback_service(
        civitai, secret_service, internal):
    _redirect(civitai, "/api/download/models/7", secret_service, status=307)
    with pytest.raises(ApplicationError) as err:
        CivitaiClient().download_open(7)
    assert err.value.code == "url_not_allowed" and SECRET not in err.value.message
    assert not internal.log


def test_a_redirect_to_the_configured_host_is_still_followed(civitai):
    """The fakes stay reachable: a hop to a configured loopback host passes."""
    _redirect(civitai, "/api/v1/models/2", f"http://localhost:{civitai.port}/moved")
    civitai.expect_request("/moved").respond_with_json({"id": 2, "name": "m"})
    assert CivitaiClient().model_get(2)["id"] == 2


@pytest.mark.parametrize("status,path,call", [
    (403, "/api/v1/models/3", lambda c: c.model_get(3)),
    (404, "/api/v1/model-versions/3", lambda c: c.version_get(3)),
    (400, "/api/v1/models/4", lambda c: c.model_get(4)),
    (403, "/api/download/models/3", lambda c: c.download_open(3)),
    (429, "/api/v1/models/5", lambda c: c.model_get(5)),
])
def test_civitai_errors_never_echo_the_body(civitai, status, path, call):
    civitai.expect_request(path).respond_with_data(
        f'{{"error": "{SECRET}", "message": "{SECRET}"}}', status=status,
        content_type="application/json")
    with pytest.raises(ApplicationError) as err:
        call(CivitaiClient())
    assert err.value.status == status, err.value.message
    assert SECRET not in err.value.message


# -- remote providers --------------------------------------------------------------------------
def _provider(httpserver, **kwargs) -> RemoteClient:
    return RemoteClient(provider="fakeprov", base_url=f"http://localhost:{httpserver.port}/v1",
                        headers={"Authorization": "Bearer pk"}, timeout=5, max_retries=1,
                        backoff=0.01, **kwargs)


def test_provider_redirect_off_the_configured_origin_is_refused(
        httpserver, secret_service, internal):
    _redirect(httpserver, "/v1/result", secret_service)
    with pytest.raises(ProviderError) as err:
        _provider(httpserver).request("GET", "/result")
    assert err.value.code == "url_not_allowed" and SECRET not in err.value.message
    assert not internal.log


def test_provider_redirect_within_the_origin_is_followed(httpserver):
    _redirect(httpserver, "/v1/old", f"http://localhost:{httpserver.port}/v1/new")
    httpserver.expect_request("/v1/new").respond_with_json({"ok": True})
    assert _provider(httpserver).json("GET", "/old") == {"ok": True}


def test_provider_redirect_to_an_extra_host_drops_the_key(httpserver, internal):
    """A configured extra host (Replicate's delivery host) is reachable; the key stays home."""
    internal.clear()
    internal.expect_request("/out.png").respond_with_data(b"png-bytes")
    _redirect(httpserver, "/v1/file", f"http://127.0.0.1:{internal.port}/out.png")
    client = _provider(httpserver, extra_hosts=[f"127.0.0.1:{internal.port}"])
    assert client.request("GET", "/file").content == b"png-bytes"
    assert "Authorization" not in internal.log[0][0].headers


@pytest.mark.parametrize("status", [500, 418])
def test_provider_errors_never_echo_a_raw_body(httpserver, status):
    httpserver.expect_request("/v1/boom").respond_with_data(
        f"<html><body>{SECRET}</body></html>", status=status, content_type="text/html")
    with pytest.raises(ProviderError) as err:
        _provider(httpserver).request("GET", "/boom")
    assert SECRET not in err.value.message and str(status) in err.value.message


def test_provider_non_json_answer_is_not_echoed(httpserver):
    httpserver.expect_request("/v1/models").respond_with_data(
        f"<html>{SECRET}</html>", content_type="text/html")
    with pytest.raises(ProviderError) as err:
        _provider(httpserver).json("GET", "/models")
    assert err.value.code == "provider_bad_response" and SECRET not in err.value.message
