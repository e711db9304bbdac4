"""Requests that answered 500 (issue 12, "No 5xx"): each is now a 4xx with the API's error shape
``{"code", "message", "fields"?}``, and nothing was created or queued for it."""

from __future__ import annotations

import pytest

from images.models import GenerationRequest
from jobs.models import Job
from loras.models import LibraryRoot, LoraModel
from providers.models import ModelProfile
from tests.factories import ImageFactory, ModelProfileFactory, UserFactory

pytestmark = pytest.mark.django_db


def _error(response, status: int, code: str | None = None) -> dict:
    """The JSON error body of ``response``, after checking its status and shape."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) <= {"code", "message", "fields"}, body
    assert isinstance(body["code"], str) and isinstance(body["message"], str) and body["message"]
    if code is not None:
        assert body["code"] == code, body
    return body


@pytest.fixture
def staff_client(db):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    staff = UserFactory(username="root-admin", is_staff=True)
    client = APIClient()
    key = Token.objects.get_or_create(user=staff)[0].key
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.fixture
def ink(tmp_path):
    """A LoRA named ``ink`` in a library root (prompt tags must resolve to reach the weight)."""
    (tmp_path / "ink.safetensors").write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}abc")
    root = LibraryRoot.objects.create(path=str(tmp_path))
    return LoraModel.objects.create(root=root, relative_path="ink.safetensors",
                                    file_name="ink.safetensors", name="ink", sha256="ab" * 32,
                                    autov3="cd" * 32)


# ------------------------------------------------------------------------- model profiles
def test_deleting_a_profile_used_by_requests_is_409_profile_in_use(staff_client, user,
                                                                   fake_profile):
    from images.services import generation_create

    generation_create(user=user, params={"prompt": "a kite"}, enqueue=False)
    body = _error(staff_client.delete(f"/api/model-profiles/{fake_profile.slug}/"), 409,
                  "profile_in_use")
    assert fake_profile.slug in body["message"]
    assert ModelProfile.objects.filter(pk=fake_profile.pk).exists()
    # An unused profile still deletes.
    ModelProfileFactory(slug="spare", is_default=False)
    assert staff_client.delete("/api/model-profiles/spare/").status_code == 204


@pytest.mark.parametrize("body,fmt", [
    ({"options": "null"}, "multipart"),  # a form's JSON text "null" parses to None: was a 500
    ({"options": None}, "json"),
    ({"options": [1, 2]}, "json"),       # not an object: providers call options.get(...)
    ({"options": "text"}, "json"),
])
def test_profile_options_that_are_not_an_object_are_400(staff_client, fake_profile, body, fmt):
    body = _error(staff_client.patch(f"/api/model-profiles/{fake_profile.slug}/", body,
                                     format=fmt), 400, "invalid")
    assert "options" in body["fields"]
    fake_profile.refresh_from_db()
    assert fake_profile.options == {}
    ok = staff_client.patch(f"/api/model-profiles/{fake_profile.slug}/",
                            {"options": '{"scheduler": "euler"}'}, format="multipart")
    assert ok.status_code == 200 and ok.json()["options"] == {"scheduler": "euler"}, ok.content


# ------------------------------------------------------------------------- example images
def test_example_download_lora_ids_beyond_64_bits_is_400(api_client):
    body = _error(api_client.post("/api/example-images/download/",
                                  {"lora_ids": [99999999999999999999]}, format="json"),
                  400, "invalid")
    assert "lora_ids" in body["fields"]
    assert not Job.objects.exists()


# ------------------------------------------------------------------------- gallery filter
@pytest.mark.parametrize("value", ["%C2%B3", "%D9%A3", "%E2%91%A0"])  # ³, Arabic 3, ①
def test_gallery_lora_filter_with_a_unicode_digit_is_not_a_500(anon_client, value):
    # str.isdigit() is true for these, int() is not: the filter took them for an id.
    ImageFactory(is_public=True)
    response = anon_client.get(f"/api/gallery/?lora={value}")
    assert response.status_code == 200, response.content
    assert response.json()["results"] == []


# ------------------------------------------------------------------------- prompt LoRA tags
@pytest.mark.parametrize("weight", ["inf", "nan", "1e999", "-inf", "Infinity"])
def test_lora_tag_with_a_non_finite_weight_is_400_naming_the_tag(api_client, fake_profile, ink,
                                                                 weight):
    tag = f"<lora:ink:{weight}>"
    body = _error(api_client.post("/api/generate/", {"prompt": f"a cat {tag}"}, format="json"),
                  400, "invalid")
    assert tag in body["message"] and "prompt" in body["fields"]
    assert not GenerationRequest.objects.exists()


# ------------------------------------------------------------------------- edit
def test_edit_whose_steps_times_strength_rounds_to_zero_steps_is_400(api_client, fake_profile,
                                                                     user):
    from django.core.files.base import ContentFile

    from tests.factories import _png

    source = ImageFactory(user=user, file=ContentFile(_png(size=(32, 32)), name="s.png"))
    body = _error(api_client.post("/api/edit/", {"image_id": source.pk, "steps": 1,
                                                 "strength": 0.5}, format="json"),
                  400, "invalid")
    assert "steps" in body["fields"] and "strength" in body["fields"]
    assert "at least 1" in body["message"]
    assert not Job.objects.exists()
    # The profile's default steps count too: 4 steps x 0.2 = 0.8 steps.
    _error(api_client.post("/api/edit/", {"image_id": source.pk, "strength": 0.2},
                           format="json"), 400, "invalid")
    accepted = api_client.post("/api/edit/", {"image_id": source.pk, "steps": 2,
                                              "strength": 0.5}, format="json")
    assert accepted.status_code == 202, accepted.content


# ------------------------------------------------------------------------- usage summary
@pytest.mark.parametrize("days", ["%C2%B3", "-1", "abc", "9" * 7])
def test_usage_summary_days_that_are_not_a_small_number_are_400(api_client, days):
    # "³".isdigit() is true and int("³") raises: this was a 500.
    body = _error(api_client.get(f"/api/usage/summary/?days={days}"), 400, "invalid")
    assert "days" in body["fields"]
    assert api_client.get("/api/usage/summary/?days=30").status_code == 200


@pytest.mark.parametrize("ordering", ["", ",", "-id,", "nope"])
def test_gallery_ordering_must_name_a_field(anon_client, ordering):
    # "?ordering=," made django-filter call order_by() with no field: unstable pages.
    body = _error(anon_client.get(f"/api/gallery/?ordering={ordering}"), 400, "invalid")
    assert "ordering" in body["fields"]
    older, newer = ImageFactory(is_public=True), ImageFactory(is_public=True)
    ids = [r["id"] for r in anon_client.get("/api/gallery/?ordering=-id").json()["results"]]
    assert ids == [newer.pk, older.pk]


@pytest.mark.parametrize("url", ["/api/gallery/?created_after=",
                                 "/api/gallery/?created_before=10/25/2006",
                                 "/api/usage/summary/?date_from=2020-13-01"])
def test_date_filters_take_iso_dates_only(api_client, url):
    # The schema says "format: date"; an empty or other-format value was read as "no filter".
    body = _error(api_client.get(url), 400, "invalid")
    assert body["fields"]
    assert api_client.get(url.split("=")[0] + "=2020-01-31").status_code == 200
