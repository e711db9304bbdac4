"""The Civitai client and its process-wide limiter against the fake Civitai over real HTTP,
and the outbound allow-list."""

import threading
import time
from email.utils import formatdate

import pytest

from core.exceptions import ApplicationError
from loras.civitai import (
    CivitaiClient,
    CivitaiNotFound,
    CivitaiRateLimited,
    CivitaiUnavailable,
    limiter,
    parse_retry_after,
)
from loras.outbound import outbound_check
from tests.support.fake_civitai import (  # noqa: F401
    fake_civitai,
    fake_civitai_server,
    safetensors_bytes,
)
from tests.support.servers import free_port
from tests.support.wait import wait_until

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(fake_civitai):
    data = safetensors_bytes(seed=1)
    version = fake_civitai.add_version(version_id=456, model_id=123, data=data,
                                       trained_words=("zzk style",), base_model="SD 1.5")
    return version["files"][0]["hashes"]


def test_lookup_by_sha256_any_case(fake_civitai, published):
    client = CivitaiClient()
    version = client.version_by_hash(published["SHA256"].lower())
    assert version["id"] == 456
    assert version["trainedWords"] == ["zzk style"]
    assert fake_civitai.last("/api/v1/model-versions/by-hash/").path.endswith(
        published["SHA256"])  # sent upper-case


def test_lookup_by_autov3(fake_civitai, published):
    assert CivitaiClient().version_by_hash(published["AutoV3"])["modelId"] == 123


def test_api_key_sent_as_bearer(fake_civitai, published, settings):
    settings.CIVITAI_API_KEY = "k-123"
    CivitaiClient().model_get(123)
    assert fake_civitai.last("/api/v1/models/123").headers["Authorization"] == "Bearer k-123"


def test_unknown_hash_is_remembered(fake_civitai):
    client = CivitaiClient()
    with pytest.raises(CivitaiNotFound) as first:
        client.version_by_hash("ab" * 32)
    assert not first.value.cached and first.value.status == 404
    with pytest.raises(CivitaiNotFound) as second:
        CivitaiClient().version_by_hash("AB" * 32)
    assert second.value.cached
    assert fake_civitai.count("/api/v1/model-versions/by-hash/") == 1


def test_not_found_memory_expires(fake_civitai, settings):
    settings.CIVITAI_NOT_FOUND_TTL = 1
    client = CivitaiClient()
    with pytest.raises(CivitaiNotFound):
        client.version_by_hash("cd" * 32)
    time.sleep(1.1)
    with pytest.raises(CivitaiNotFound):
        client.version_by_hash("cd" * 32)
    assert fake_civitai.count("/api/v1/model-versions/by-hash/") == 2


def test_429_with_retry_after_waits_then_succeeds(fake_civitai, published):
    fake_civitai.fail_next("/api/v1/model-versions/by-hash/", status=429, retry_after="1")
    started = time.monotonic()
    version = CivitaiClient().version_by_hash(published["SHA256"])
    assert version["id"] == 456
    calls = [r for r in fake_civitai.requests if r.path.startswith("/api/v1/model-versions/")]
    assert len(calls) == 2
    assert calls[1].at - calls[0].at >= 1.0
    assert time.monotonic() - started >= 1.0


def test_retry_after_http_date_is_understood():
    in_two = formatdate(time.time() + 2, usegmt=True)
    assert 0.5 <= parse_retry_after(in_two) <= 2.0
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_limiter_is_shared_by_clients_and_threads(fake_civitai, published):
    """A 429 seen by one client makes every other client of the process wait too."""
    fake_civitai.fail_next("/api/v1/models/", status=429, retry_after="1")
    results = []

    def other():
        # start once the first client got its 429, while it waits out the Retry-After
        wait_until(lambda: limiter.pending() > 0, timeout=10, interval=0.001)
        results.append(CivitaiClient().version_get(456)["id"])

    thread = threading.Thread(target=other)
    thread.start()
    assert CivitaiClient().model_get(123)["id"] == 123
    thread.join()
    assert results == [456]
    first = fake_civitai.requests[0].at
    second_client = fake_civitai.last("/api/v1/model-versions/456")
    assert second_client.at - first >= 1.0


def test_5xx_backs_off_exponentially_then_succeeds(fake_civitai, published, settings):
    settings.CIVITAI_BACKOFF_SECONDS = 0.1
    settings.CIVITAI_BACKOFF_MAX_SECONDS = 1.0
    fake_civitai.fail_next("/api/v1/models/", status=500, count=2)
    assert CivitaiClient().model_get(123)["id"] == 123
    times = [r.at for r in fake_civitai.requests if r.path.startswith("/api/v1/models/")]
    assert len(times) == 3
    assert times[1] - times[0] >= 0.1
    assert times[2] - times[1] >= 0.2  # doubled


def test_backoff_is_capped(settings):
    settings.CIVITAI_BACKOFF_SECONDS = 1.0
    settings.CIVITAI_BACKOFF_MAX_SECONDS = 30.0
    settings.CIVITAI_MAX_RETRY_AFTER = 60.0
    assert [limiter.backoff_delay(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert limiter.backoff_delay(0, retry_after=600.0) == 60.0


def test_exhausted_429_raises_rate_limited_not_not_found(fake_civitai, published):
    fake_civitai.fail_next("/api/v1/model-versions/by-hash/", status=429, count=4,
                           retry_after="0")
    with pytest.raises(CivitaiRateLimited) as err:
        CivitaiClient().version_by_hash(published["SHA256"])
    assert err.value.status == 429 and err.value.code == "civitai_rate_limited"
    assert fake_civitai.count("/api/v1/model-versions/by-hash/") == 4  # 1 + 3 retries
    # the rate limit was not remembered as "not found": the next call reaches the server
    assert CivitaiClient().version_by_hash(published["SHA256"])["id"] == 456


def test_exhausted_5xx_raises_unavailable(fake_civitai):
    fake_civitai.fail_next("/api/v1/models/", status=503, count=10)
    with pytest.raises(CivitaiUnavailable) as err:
        CivitaiClient().model_get(123)
    assert err.value.status == 503


def test_connection_refused_is_unavailable(fake_civitai, settings):
    settings.CIVITAI_BASE_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(CivitaiUnavailable):
        CivitaiClient().model_get(1)


def test_batch_lookup(fake_civitai, published):
    found = CivitaiClient().versions_by_hashes([published["SHA256"], "ef" * 32])
    assert found[published["SHA256"]]["id"] == 456
    assert found["ef" * 32] is None


def test_images_follow_the_cursor(fake_civitai):
    fake_civitai.add_version(version_id=7, model_id=70, data=safetensors_bytes(seed=7),
                             image_count=5)
    client = CivitaiClient()
    images = list(client.images_iter(model_version_id=7, limit=2))
    assert len(images) == 5
    assert len({i["id"] for i in images}) == 5
    queries = [r.query for r in fake_civitai.requests if r.path == "/api/v1/images"]
    assert len(queries) == 3 and "cursor=2" in queries[1]


# -- outbound allow-list -------------------------------------------------------------------
def test_outbound_refuses_unlisted_host(settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["civitai.com"]
    settings.CIVITAI_BASE_URL = "https://civitai.com"
    with pytest.raises(ApplicationError) as err:
        outbound_check("https://evil.example/x.safetensors")
    assert err.value.code == "url_not_allowed" and err.value.status == 400


@pytest.mark.parametrize("url", ["ftp://civitai.com/x", "file:///etc/passwd", "/relative",
                                 "http://user:pw@civitai.com/"])
def test_outbound_refuses_bad_schemes_and_credentials(settings, url):
    settings.OUTBOUND_ALLOWED_HOSTS = ["civitai.com"]
    with pytest.raises(ApplicationError):
        outbound_check(url)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "10.1.2.3", "169.254.169.254",
                                  "[::1]", "0.0.0.0"])
def test_outbound_refuses_private_addresses_unless_allowed(settings, host):
    settings.OUTBOUND_ALLOWED_HOSTS = [host.strip("[]")]
    settings.OUTBOUND_ALLOW_PRIVATE = False
    with pytest.raises(ApplicationError) as err:
        outbound_check(f"http://{host}:8000/file")
    assert "non-public" in err.value.message
    settings.OUTBOUND_ALLOW_PRIVATE = True
    outbound_check(f"http://{host}:8000/file")  # no error


def test_outbound_allows_civitai_base_host(settings):
    settings.OUTBOUND_ALLOWED_HOSTS = []
    settings.OUTBOUND_ALLOW_PRIVATE = True
    settings.CIVITAI_BASE_URL = "http://127.0.0.1:9"
    outbound_check("http://127.0.0.1:9/api/download/models/1")
    with pytest.raises(ApplicationError):
        outbound_check("http://localhost:9/api/download/models/1")
