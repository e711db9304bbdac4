"""Outbound fetches (preview from URL, downloads) beyond ``tests/loras/``: private addresses in
disguise (IPv4 in IPv6 forms, shared 100.64/10, decimal and short IPv4 literals), and redirect
hops of an allowed URL to other schemes, to URLs with credentials, or in a loop, through the API
against a local server over real HTTP."""

import pytest
from werkzeug.wrappers import Response

from core.exceptions import ApplicationError
from loras.outbound import outbound_check
from tests.support.bad_files import good_png
from tests.support.lora_files import write_lora

# Each resolves (getaddrinfo on a literal: no DNS) to a non-public address.
DISGUISED_PRIVATE = [
    "2130706433",          # decimal 127.0.0.1
    "127.1",               # short form of 127.0.0.1
    "0x7f000001",          # hex 127.0.0.1
    "[::ffff:127.0.0.1]",  # IPv4-mapped loopback
    "[::ffff:a9fe:a9fe]",  # IPv4-mapped 169.254.169.254 (cloud metadata)
    "[2002:7f00:1::]",     # 6to4 of 127.0.0.1
    "[64:ff9b::a00:1]",    # NAT64 of 10.0.0.1
    "[fd00::1]",           # unique local
    "[fe80::1]",           # link local
    "100.64.0.1",          # shared address space (carrier NAT)
    "192.168.1.1",
    "172.16.0.1",
    "224.0.0.1",           # multicast
]


@pytest.mark.parametrize("host", DISGUISED_PRIVATE)
def test_disguised_private_addresses_are_refused(settings, host):
    settings.OUTBOUND_ALLOWED_HOSTS = [host.strip("[]").lower()]
    settings.OUTBOUND_ALLOW_PRIVATE = False
    with pytest.raises(ApplicationError) as err:
        outbound_check(f"http://{host}/x.png")
    assert err.value.code == "url_not_allowed" and err.value.status == 400


@pytest.mark.parametrize("host", ["8.8.8.8", "[2606:4700:4700::1111]", "[64:ff9b::808:808]"])
def test_public_literals_pass_the_address_rule(settings, host):
    settings.OUTBOUND_ALLOWED_HOSTS = [host.strip("[]").lower()]
    settings.OUTBOUND_ALLOW_PRIVATE = False
    outbound_check(f"http://{host}/x.png")  # no error (nothing is fetched)


@pytest.fixture
def lora(db, tmp_path, settings):
    from loras.models import LibraryRoot
    from loras.services import lora_register

    root = tmp_path / "lib"
    root.mkdir()
    LibraryRoot.objects.create(name="lib", path=str(root))
    write_lora(root / "a.safetensors")
    return lora_register(path=str(root / "a.safetensors"))


@pytest.fixture
def loopback_allowed(settings, httpserver):
    settings.OUTBOUND_ALLOWED_HOSTS = ["localhost"]
    settings.OUTBOUND_ALLOW_PRIVATE = True
    httpserver.expect_request("/img.png").respond_with_data(good_png(), content_type="image/png")
    return f"http://localhost:{httpserver.port}"


def _redirect(httpserver, path, location):
    httpserver.expect_request(path).respond_with_response(
        Response("", 302, headers={"Location": location}))


@pytest.mark.parametrize("location", [
    "file:///etc/passwd",
    "ftp://localhost/img.png",
    "gopher://localhost:70/",
    "http://user:pw@localhost:{port}/img.png",
])
def test_redirect_to_another_scheme_or_credentials_is_refused(
        lora, api_client, httpserver, loopback_allowed, location):
    _redirect(httpserver, "/r", location.format(port=httpserver.port))
    r = api_client.post(f"/api/loras/{lora.pk}/preview/", {"url": f"{loopback_allowed}/r"},
                        format="json")
    assert r.status_code == 400 and r.json()["code"] == "url_not_allowed", r.content
    assert not any(req.path == "/img.png" for req, _ in httpserver.log)


def test_redirect_loop_is_refused(lora, api_client, httpserver, loopback_allowed):
    _redirect(httpserver, "/loop", f"{loopback_allowed}/loop")
    r = api_client.post(f"/api/loras/{lora.pk}/preview/", {"url": f"{loopback_allowed}/loop"},
                        format="json")
    assert r.status_code == 400 and r.json()["code"] == "too_many_redirects", r.content
    assert sum(req.path == "/loop" for req, _ in httpserver.log) <= 6


def test_redirect_within_the_rules_is_followed(lora, api_client, httpserver, loopback_allowed):
    """The refusals above are about the hop: an ordinary redirect still works."""
    _redirect(httpserver, "/ok", f"{loopback_allowed}/img.png")
    r = api_client.post(f"/api/loras/{lora.pk}/preview/", {"url": f"{loopback_allowed}/ok"},
                        format="json")
    assert r.status_code == 200, r.content


def test_preview_redirect_to_another_name_of_loopback_is_refused(
        lora, api_client, httpserver, settings):
    """``localhost`` is configured (loopback allowed for it); ``127.0.0.1`` is not: a hop
    there is refused though it is the same machine, and nothing is requested from it."""
    settings.OUTBOUND_ALLOWED_HOSTS = ["localhost"]
    settings.OUTBOUND_ALLOW_PRIVATE = True
    httpserver.expect_request("/img.png").respond_with_data(good_png(),
                                                           content_type="image/png")
    _redirect(httpserver, "/r", f"http://127.0.0.1:{httpserver.port}/img.png")
    r = api_client.post(f"/api/loras/{lora.pk}/preview/",
                        {"url": f"http://localhost:{httpserver.port}/r"}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "url_not_allowed", r.content
    assert not any(req.path == "/img.png" for req, _ in httpserver.log)
    settings.OUTBOUND_ALLOWED_HOSTS = ["localhost", "127.0.0.1"]  # configured: followed
    r = api_client.post(f"/api/loras/{lora.pk}/preview/",
                        {"url": f"http://localhost:{httpserver.port}/r"}, format="json")
    assert r.status_code == 200, r.content


def test_private_address_refused_when_private_is_off(lora, api_client, httpserver, settings):
    """Even an allow-listed host is refused while it resolves to loopback, and nothing is
    requested from it."""
    settings.OUTBOUND_ALLOWED_HOSTS = ["localhost", "127.0.0.1"]
    settings.OUTBOUND_ALLOW_PRIVATE = False
    httpserver.expect_request("/img.png").respond_with_data(good_png(), content_type="image/png")
    for host in ("localhost", "127.0.0.1"):
        r = api_client.post(f"/api/loras/{lora.pk}/preview/",
                            {"url": f"http://{host}:{httpserver.port}/img.png"}, format="json")
        assert r.status_code == 400 and r.json()["code"] == "url_not_allowed", r.content
    assert not httpserver.log


@pytest.mark.parametrize("url", ["http://10.0.0.1/api/download/models/1",
                                 "http://[::ffff:127.0.0.1]/api/download/models/1",
                                 "http://169.254.169.254/latest/meta-data/"])
def test_download_url_to_a_private_address_is_refused(db, api_client, settings, url):
    settings.OUTBOUND_ALLOWED_HOSTS = ["10.0.0.1", "::ffff:127.0.0.1", "169.254.169.254"]
    settings.OUTBOUND_ALLOW_PRIVATE = False
    from loras.models import Download

    r = api_client.post("/api/downloads/", {"url": url}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "url_not_allowed", r.content
    assert not Download.objects.exists()
