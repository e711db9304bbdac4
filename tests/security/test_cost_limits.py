"""Limits where cost is (issue #12): every endpoint that queues work or decodes images has a
per-user throttle (429 + Retry-After, the API error shape); a request's pixels and files are
capped before any work starts."""

import io
import time
import uuid

import pytest
from django.core.cache import cache
from PIL import Image as PILImage
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from example_images.models import ExampleImage
from images.models import GenerationRequest
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

# (method, path, THROTTLE_<SCOPE>_RATE setting, JSON body)
COSTLY = [
    ("post", "/api/generate/", "THROTTLE_GENERATE_RATE", {"prompt": "a kite"}),
    ("post", "/api/edit/", "THROTTLE_EDIT_RATE", {}),
    ("post", "/api/upscale/", "THROTTLE_UPSCALE_RATE", {}),
    ("post", "/api/images/999999/narrate/", "THROTTLE_NARRATE_RATE", None),
    ("post", "/api/example-images/import/", "THROTTLE_EXAMPLE_IMPORT_RATE", {}),
    ("post", "/api/example-images/download/", "THROTTLE_EXAMPLE_DOWNLOAD_RATE", {"lora_ids": [0]}),
    ("post", "/api/example-images/force/", "THROTTLE_EXAMPLE_DOWNLOAD_RATE", {}),
    ("post", "/api/example-images/resume/", "THROTTLE_EXAMPLE_DOWNLOAD_RATE", None),
    ("post", "/api/loras/999999/example-images/generate/", "THROTTLE_EXAMPLE_GENERATE_RATE", {}),
    ("post", "/api/loras/scan/", "THROTTLE_LORA_SCAN_RATE", None),
    ("post", "/api/loras/999999/civitai/refresh/", "THROTTLE_CIVITAI_REFRESH_RATE", None),
    ("post", "/api/loras/civitai/refresh-all/", "THROTTLE_CIVITAI_REFRESH_ALL_RATE",
     {"lora_ids": [999999]}),
    ("post", "/api/downloads/", "THROTTLE_DOWNLOADS_RATE", {}),
    ("post", "/api/loras/auto-organize/", "THROTTLE_AUTO_ORGANIZE_RATE", {"dry_run": True}),
    ("post", "/api/loras/999999/preview/", "THROTTLE_PREVIEW_UPLOAD_RATE", {}),
]


@pytest.fixture(autouse=True)
def _own_cache(settings):
    """A cache of this test's own, so throttle counters never leak between tests (nor into a
    shared Redis)."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": f"cost-limits-{uuid.uuid4().hex}"}}
    yield
    cache.clear()


def _client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def _throttled(response):
    assert response.status_code == 429, (response.status_code, response.content[:300])
    body = response.json()
    assert body["code"] == "throttled" and body["message"], body
    assert 1 <= int(response["Retry-After"]) <= 60
    return True


@pytest.mark.parametrize("method,path,setting,body", COSTLY, ids=[c[1] for c in COSTLY])
def test_every_costly_endpoint_is_throttled_per_user(settings, fake_profile, method, path,
                                                     setting, body):
    setattr(settings, setting, "1/min")
    alice = _client(UserFactory(username="alice-cost", is_staff=True))
    first = getattr(alice, method)(path, body, format="json")
    assert first.status_code != 429 and first.status_code < 500, first.content[:300]
    assert _throttled(getattr(alice, method)(path, body, format="json"))
    # Another user has a budget of their own.
    bob = _client(UserFactory(username="bob-cost", is_staff=True))
    assert getattr(bob, method)(path, body, format="json").status_code != 429


def test_reads_of_a_throttled_endpoint_stay_free(settings):
    settings.THROTTLE_DOWNLOADS_RATE = "1/min"
    alice = _client(UserFactory(username="alice-read", is_staff=True))
    alice.post("/api/downloads/", {}, format="json")
    assert _throttled(alice.post("/api/downloads/", {}, format="json"))
    assert [alice.get("/api/downloads/").status_code for _ in range(3)] == [200] * 3


def test_rates_can_be_turned_off(settings):
    settings.THROTTLE_LORA_SCAN_RATE = ""
    alice = _client(UserFactory(username="alice-off", is_staff=True))
    codes = {alice.post("/api/loras/scan/").status_code for _ in range(5)}
    assert 429 not in codes and max(codes) < 500, codes


def test_generation_pixel_budget(settings, fake_profile, api_client):
    settings.REQUEST_MAX_PIXELS = 256 * 256 * 2
    ok = api_client.post("/api/generate/", {"prompt": "a kite", "width": 256, "height": 256,
                                            "n": 2}, format="json")
    assert ok.status_code == 202, ok.content
    refused = api_client.post("/api/generate/", {"prompt": "a kite", "width": 256,
                                                 "height": 256, "n": 3}, format="json")
    assert refused.status_code == 400, refused.content
    body = refused.json()
    assert body["code"] == "too_many_pixels" and "n" in body["fields"], body
    assert GenerationRequest.objects.count() == 1


@pytest.fixture(scope="module")
def big_png() -> bytes:
    """A real 64-megapixel PNG (8000 x 8000, one flat colour: small on disk, 64 MP to decode)."""
    buf = io.BytesIO()
    PILImage.new("L", (8000, 8000), 7).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _uploads(data: bytes, count: int):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return [SimpleUploadedFile(f"big-{i}.png", data, content_type="image/png")
            for i in range(count)]


def test_fifty_64mp_files_are_refused_before_decoding(big_png, api_client):
    started = time.monotonic()
    resp = api_client.post("/api/example-images/import/",
                           {"lora": 1, "files": _uploads(big_png, 50)}, format="multipart")
    elapsed = time.monotonic() - started
    assert resp.status_code == 400, resp.content[:300]
    assert resp.json()["code"] == "too_many_files"
    assert ExampleImage.objects.count() == 0
    # Decoding 50 x 64 MP would take minutes here; a refusal from the count takes no decoding.
    assert elapsed < 30, elapsed


def test_import_pixel_budget_reads_headers_only(settings, big_png, api_client):
    settings.REQUEST_MAX_PIXELS = 100_000_000  # one 64 MP file fits, two do not
    started = time.monotonic()
    resp = api_client.post("/api/example-images/import/",
                           {"lora": 1, "files": _uploads(big_png, 3)}, format="multipart")
    assert resp.status_code == 400, resp.content[:300]
    body = resp.json()
    assert body["code"] == "too_many_pixels" and "files" in body["fields"], body
    assert time.monotonic() - started < 10


def test_file_count_cap_comes_from_settings(settings, api_client):
    settings.REQUEST_MAX_FILES = 2
    from tests.factories import _png

    resp = api_client.post("/api/example-images/import/",
                           {"lora": 1, "files": _uploads(_png(), 3)}, format="multipart")
    assert resp.status_code == 400 and resp.json()["code"] == "too_many_files", resp.content
