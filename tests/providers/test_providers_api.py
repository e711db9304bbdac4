"""The providers API: listing, health, models, model profiles, prompt enhancement."""

import copy

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from providers import registry
from tests.factories import ModelProfileFactory, UserFactory

from .remote_helpers import fake_openai, fake_parasail, fake_sdnext  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh(settings):
    cache.clear()
    registry.reset()
    settings.IMAGE_PROVIDERS = copy.deepcopy(settings.IMAGE_PROVIDERS)
    # diffusers_local's health/models import torch (tens of seconds on a busy 2-core host);
    # test_diffusers_local.py and test_contract.py cover it.
    settings.IMAGE_PROVIDERS.pop("diffusers_local", None)
    for name in ("sdnext", "replicate", "runware", "gemini", "openai", "parasail"):
        options = settings.IMAGE_PROVIDERS[name]["OPTIONS"]
        options.update(api_key="", timeout=2.0, max_retries=0, backoff=0.01)
        if name == "sdnext":
            options["base_url"] = ""
    yield
    cache.clear()


def _point(settings, name, base_url, **options):
    settings.IMAGE_PROVIDERS[name]["OPTIONS"].update(base_url=base_url, **options)
    registry.reset()


@pytest.fixture
def staff_client():
    client = APIClient()
    client.force_authenticate(UserFactory(username="boss", is_staff=True))
    return client


def test_providers_lists_every_provider_with_configuration_and_capabilities(api_client):
    body = {p["name"]: p for p in api_client.get("/api/providers/").json()}
    assert {"fake", "sdnext", "replicate", "runware", "gemini", "openai", "parasail"} <= set(body)
    assert body["fake"]["configured"] is True and body["fake"]["queue"] == "default"
    assert body["openai"]["configured"] is False
    assert body["openai"]["missing"] == ["OPENAI_API_KEY"]
    assert body["sdnext"]["missing"] == ["SDNEXT_BASE_URL"]
    assert body["sdnext"]["capabilities"]["upscale"] is True
    assert body["parasail"]["capabilities"]["prompt_enhance"] is True
    assert body["fake_gpu"]["queue"] == "gpu"


def test_anonymous_is_refused(anon_client):
    assert anon_client.get("/api/providers/").status_code in (401, 403)


def test_health_reports_each_provider_and_caches_briefly(api_client, settings, fake_sdnext):
    _point(settings, "sdnext", fake_sdnext.base_url)
    first = {h["name"]: h for h in api_client.get("/api/providers/health/").json()}
    assert first["sdnext"]["configured"] and first["sdnext"]["reachable"]
    assert first["sdnext"]["latency_ms"] >= 0 and first["sdnext"]["cached"] is False
    assert first["openai"] == first["openai"] | {"configured": False, "reachable": False}
    assert first["fake"]["reachable"] is True
    calls = fake_sdnext.count("/sdapi/v1/progress")
    second = {h["name"]: h for h in api_client.get("/api/providers/health/").json()}
    assert second["sdnext"]["cached"] is True and fake_sdnext.count("/sdapi/v1/progress") == calls
    fake_sdnext.stop()
    # a normal user gets the cache; staff may refresh
    staff = APIClient()
    staff.force_authenticate(UserFactory(username="root", is_staff=True))
    third = {h["name"]: h for h in staff.get("/api/providers/health/?refresh=1").json()}
    assert third["sdnext"]["reachable"] is False and third["sdnext"]["detail"]


def test_health_shows_the_last_error_of_a_provider(api_client, settings, fake_openai):
    _point(settings, "openai", fake_openai.base_url + "/v1", api_key="sk-bad")
    from providers.base import NullSink, ProviderError
    from tests.providers.remote_helpers import spec

    with pytest.raises(ProviderError):
        registry.get("openai").generate(spec("gpt-image-1"), NullSink())
    health = {h["name"]: h for h in api_client.get("/api/providers/health/").json()}
    assert health["openai"]["last_error"]["code"] == "provider_auth"
    assert "Incorrect API key" in health["openai"]["last_error"]["message"]
    assert health["openai"]["ok"] is False


def test_models_from_every_provider(api_client, settings, fake_sdnext, fake_openai):
    _point(settings, "sdnext", fake_sdnext.base_url)
    _point(settings, "openai", fake_openai.base_url + "/v1", api_key="sk-test")
    body = {m["provider"]: m for m in api_client.get("/api/providers/models/").json()}
    assert body["sdnext"]["models"][0]["id"].startswith("v1-5-pruned-emaonly")
    assert [m["id"] for m in body["openai"]["models"]] == ["gpt-image-1", "dall-e-3"]
    assert body["fake"]["models"][0]["id"] == "fake"
    assert body["gemini"]["error"]["code"] == "provider_unavailable"


def test_model_profiles_read_for_users_write_for_staff(api_client, staff_client):
    ModelProfileFactory()
    listed = api_client.get("/api/model-profiles/").json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert [p["slug"] for p in rows] == ["fake"]
    payload = {"name": "Cloud", "slug": "cloud", "provider": "openai",
               "pipeline_type": "openai", "model_path": "gpt-image-1"}
    assert api_client.post("/api/model-profiles/", payload, format="json").status_code == 403
    created = staff_client.post("/api/model-profiles/", payload, format="json")
    assert created.status_code == 201, created.json()
    assert api_client.get("/api/model-profiles/cloud/").json()["provider"] == "openai"
    patched = staff_client.patch("/api/model-profiles/cloud/", {"is_default": True},
                                 format="json")
    assert patched.status_code == 200
    assert api_client.get("/api/model-profiles/fake/").json()["is_default"] is False
    assert staff_client.delete("/api/model-profiles/cloud/").status_code == 204


@pytest.mark.parametrize("change,field", [
    ({"provider": "nowhere"}, "provider"),
    ({"pipeline_type": "sdxl"}, "pipeline_type"),
])
def test_unknown_provider_or_pipeline_type_is_400(staff_client, change, field):
    payload = {"name": "X", "slug": "x", "provider": "openai", "pipeline_type": "openai",
               **change}
    response = staff_client.post("/api/model-profiles/", payload, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid" and field in response.json()["fields"]


def test_enhance_uses_parasail(api_client, settings, fake_parasail):
    _point(settings, "parasail", fake_parasail.base_url + "/v1", api_key="ps-test")
    response = api_client.post("/api/prompt-helpers/enhance/", {"prompt": "a fox"},
                               format="json")
    assert response.status_code == 200
    assert response.json() == {"prompt": "<enhanced> a fox, golden hour light",
                               "provider": "parasail"}


def test_enhance_errors(api_client, settings, fake_parasail):
    url = "/api/prompt-helpers/enhance/"
    none = api_client.post(url, {"prompt": "a fox"}, format="json")
    assert none.status_code == 503 and none.json()["code"] == "provider_unavailable"
    assert api_client.post(url, {"prompt": "a fox", "provider": "fake"},
                           format="json").json()["code"] == "unsupported"
    assert api_client.post(url, {"prompt": "a fox", "provider": "zzz"},
                           format="json").status_code == 400
    _point(settings, "parasail", fake_parasail.base_url + "/v1", api_key="ps-test")
    refused = api_client.post(url, {"prompt": "forbidden"}, format="json")
    assert refused.status_code == 400 and refused.json()["code"] == "content_policy"
    fake_parasail.fail_next(status=503, count=5)
    down = api_client.post(url, {"prompt": "a fox"}, format="json")
    assert down.status_code == 503 and down.json()["code"] == "provider_unavailable"


def test_generate_with_an_unconfigured_remote_profile_is_503(api_client):
    ModelProfileFactory(slug="cloud", provider="openai", pipeline_type="openai",
                        is_default=False)
    response = api_client.post("/api/generate/", {"prompt": "a fox", "model": "cloud"},
                               format="json")
    assert response.status_code == 503
    assert response.json()["code"] == "provider_unavailable"
    assert "OPENAI_API_KEY" in response.json()["message"]


def test_a_backend_that_cannot_be_imported_is_listed_and_answers_503(api_client, settings):
    settings.IMAGE_PROVIDERS["ghost"] = {"BACKEND": "providers.nowhere.GhostProvider",
                                         "QUEUE": "default", "OPTIONS": {}}
    registry.reset()
    listed = {p["name"]: p for p in api_client.get("/api/providers/").json()}
    assert listed["ghost"]["importable"] is False and listed["ghost"]["configured"] is False
    assert "make install" in listed["ghost"]["detail"]
    health = {h["name"]: h for h in api_client.get("/api/providers/health/").json()}
    assert health["ghost"]["reachable"] is False
    ModelProfileFactory(slug="ghostly", provider="ghost", pipeline_type="any", is_default=False)
    response = api_client.post("/api/generate/", {"prompt": "a fox", "model": "ghostly"},
                               format="json")
    assert response.status_code == 503 and response.json()["code"] == "provider_unavailable"


def test_admin_form_refuses_an_unknown_pipeline_type():
    from providers.admin import ModelProfileForm

    form = ModelProfileForm(data={"name": "X", "slug": "x", "provider": "openai",
                                  "pipeline_type": "sdxl", "options": "{}",
                                  "default_width": 512, "default_height": 512,
                                  "default_steps": 20, "default_guidance_scale": 7,
                                  "max_width": 1024, "max_height": 1024})
    assert not form.is_valid() and "pipeline_type" in form.errors
