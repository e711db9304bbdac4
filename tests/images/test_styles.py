"""Styles: CRUD and sharing rules, and ``style`` in POST /api/generate/ (template, negative
prompt, default parameters)."""

import pytest
from rest_framework.test import APIClient

from images.models import GenerationRequest, Style

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(admin_user):
    client = APIClient()
    client.force_authenticate(admin_user)
    return client


def test_template_must_contain_prompt(api_client):
    resp = api_client.post("/api/styles/", {"name": "bad", "prompt_template": "oil painting"},
                           format="json")
    assert resp.status_code == 400 and "prompt_template" in resp.json()["fields"]
    resp = api_client.post("/api/styles/", {"name": "x", "default_parameters": {"sampler": 1}},
                           format="json")
    assert resp.status_code == 400 and "default_parameters" in resp.json()["fields"]
    for bad in ({"width": "wide"}, {"width": 100}, {"steps": 0}, {"guidance_scale": 99}):
        resp = api_client.post("/api/styles/", {"name": "x", "default_parameters": bad},
                               format="json")
        assert resp.status_code == 400 and "default_parameters" in resp.json()["fields"], bad
    resp = api_client.post("/api/styles/", {"name": "ok", "default_parameters": {
        "steps": 12, "width": 512, "model": "fake"}}, format="json")
    assert resp.status_code == 201
    assert resp.json()["default_parameters"] == {"steps": 12, "width": 512, "model": "fake"}


def test_shared_styles_are_staff_managed(api_client, staff_client, user, other_user):
    resp = api_client.post("/api/styles/", {"name": "mine", "is_shared": True}, format="json")
    assert resp.status_code == 403 and resp.json()["code"] == "forbidden"
    resp = staff_client.post("/api/styles/", {"name": "Watercolor", "is_shared": True,
                                              "prompt_template": "watercolor of {prompt}"},
                             format="json")
    assert resp.status_code == 201 and resp.json()["owner"] is None
    shared = resp.json()["id"]
    Style.objects.create(owner=other_user, name="theirs")
    own = api_client.post("/api/styles/", {"name": "ink", "prompt_template": "{prompt}, ink"},
                          format="json").json()
    listing = {s["name"]: s for s in api_client.get("/api/styles/").json()["results"]}
    assert set(listing) == {"Watercolor", "ink"}  # not mallory's private style
    assert listing["Watercolor"]["editable"] is False and listing["ink"]["editable"] is True
    assert api_client.patch(f"/api/styles/{shared}/", {"name": "x"},
                            format="json").status_code == 403
    assert api_client.delete(f"/api/styles/{shared}/").status_code == 403
    assert staff_client.patch(f"/api/styles/{shared}/", {"negative_prompt": "muddy"},
                              format="json").status_code == 200
    assert api_client.patch(f"/api/styles/{own['id']}/", {"name": "ink2"},
                            format="json").json()["name"] == "ink2"


def test_generate_applies_style_by_id_and_name(api_client, user, fake_profile,
                                               django_capture_on_commit_callbacks):
    style = Style.objects.create(owner=user, name="Noir",
                                 prompt_template="film noir photo of {prompt}, high contrast",
                                 negative_prompt="color", default_parameters={"steps": 9,
                                                                              "width": 128})
    with django_capture_on_commit_callbacks(execute=False):
        resp = api_client.post("/api/generate/", {"prompt": "a detective", "style": "Noir"},
                               format="json")
    assert resp.status_code == 202, resp.content
    gen = GenerationRequest.objects.get(pk=resp.json()["id"])
    assert gen.prompt == "film noir photo of a detective, high contrast"
    assert gen.negative_prompt == "color" and gen.steps == 9 and gen.width == 128
    assert gen.style_id == style.pk
    with django_capture_on_commit_callbacks(execute=False):
        resp = api_client.post("/api/generate/", {"prompt": "a cat", "style": str(style.pk),
                                                  "steps": 3, "negative_prompt": ""},
                               format="json")
    gen = GenerationRequest.objects.get(pk=resp.json()["id"])
    assert gen.steps == 3 and gen.negative_prompt == ""  # explicit values win


def test_generate_with_unknown_or_foreign_style_is_400(api_client, other_user, fake_profile):
    theirs = Style.objects.create(owner=other_user, name="secret")
    for ref in ("nope", str(theirs.pk), "secret"):
        resp = api_client.post("/api/generate/", {"prompt": "a cat", "style": ref},
                               format="json")
        assert resp.status_code == 400 and resp.json()["code"] == "unknown_style", ref
    assert not GenerationRequest.objects.exists()
