"""Who may change the shared library (issue 11, item 7; docs/library.md): staff and users
holding ``loras.manage_library`` change files and shared fields; every other signed-in user
reads the library and keeps their own favourites. (Every write endpoint's 403 is checked by
tests/security/test_permissions_matrix.py from the schema.)"""

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from loras.models import LoraFavorite
from loras.permissions import can_manage_library
from tests.factories import UserFactory
from tests.loras.test_library_ops import SIDECARS, Library, lib, tree  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


@pytest.fixture
def reader(other_user):
    """mallory: signed in, neither staff nor a library manager."""
    assert not can_manage_library(other_user)
    return client_for(other_user)


def test_who_manages_the_library(user, other_user):
    staff = UserFactory(username="staff", is_staff=True)
    boss = UserFactory(username="boss", is_superuser=True)
    inactive = UserFactory(username="gone", is_staff=True, is_active=False)
    assert [can_manage_library(u) for u in (user, staff, boss, other_user, inactive)] == [
        True, True, True, False, False]


def test_a_reader_reads_and_keeps_their_own_favourites(lib, reader, api_client, other_user):
    lora = lib.lora("a.safetensors", notes="shared")
    assert reader.get("/api/loras/").json()["count"] == 1
    assert reader.get(f"/api/loras/{lora.pk}/").status_code == 200
    r = reader.patch(f"/api/loras/{lora.pk}/", {"favorite": True}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["favorite"] is True
    assert [i["name"] for i in reader.get("/api/loras/?favorite=true").json()["results"]] == ["a"]
    # ... which is theirs only: alice (the manager) has no favourite.
    assert api_client.get(f"/api/loras/{lora.pk}/").json()["favorite"] is False
    assert api_client.get("/api/loras/?favorite=true").json()["count"] == 0
    assert list(LoraFavorite.objects.values_list("user", flat=True)) == [other_user.pk]
    r = reader.patch(f"/api/loras/{lora.pk}/", {"favorite": False}, format="json")
    assert r.json()["favorite"] is False and not LoraFavorite.objects.exists()


def test_a_reader_cannot_change_shared_fields_or_files(lib, reader):
    lora = lib.lora("style/a.safetensors", sidecars=SIDECARS, notes="shared")
    before = tree(lib.path)
    for method, url, body in [
            ("patch", f"/api/loras/{lora.pk}/", {"notes": "mine", "favorite": True}),
            ("patch", f"/api/loras/{lora.pk}/", {"base_model": "Pony"}),
            ("post", f"/api/loras/{lora.pk}/rename/", {"name": "b"}),
            ("post", f"/api/loras/{lora.pk}/move/", {"folder": "x"}),
            ("delete", f"/api/loras/{lora.pk}/", None),
            ("post", "/api/loras/bulk-delete/", {"ids": [lora.pk]}),
            ("post", "/api/loras/auto-organize/", {}),
            ("post", "/api/loras/scan/", {}),
            ("post", f"/api/loras/{lora.pk}/civitai/refresh/", {}),
            ("post", "/api/downloads/", {"model_version_id": 1})]:
        r = getattr(reader, method)(url, body, format="json")
        assert r.status_code == 403, (method, url, r.content)
        assert r.json()["code"] == "permission_denied"
    lora.refresh_from_db()
    assert (lora.notes, lora.name, lora.status) == ("shared", "a", "present")
    assert tree(lib.path) == before
    assert not LoraFavorite.objects.exists()  # a refused PATCH changes nothing at all
    # A plan changes nothing: everyone may look at it.
    r = reader.post("/api/loras/auto-organize/?dry_run=1", {}, format="json")
    assert r.status_code == 200 and "moves" in r.json()


def test_a_manager_by_permission_and_staff_change_files(lib, api_client, user):
    assert not user.is_staff
    lora = lib.lora("a.safetensors", sidecars=(".civitai.info",))
    r = api_client.post(f"/api/loras/{lora.pk}/rename/", {"name": "b"}, format="json")
    assert r.status_code == 200, r.content
    staff = client_for(UserFactory(username="staff", is_staff=True))
    r = staff.post(f"/api/loras/{lora.pk}/move/", {"folder": "x"}, format="json")
    assert r.status_code == 200, r.content
    assert tree(lib.path) == {"x/b.safetensors", "x/b.civitai.info"}


def test_the_pages_offer_changes_to_managers_only(lib, user, other_user):
    lora = lib.lora("a.safetensors")
    manager, reader = Client(), Client()
    manager.force_login(user)
    reader.force_login(other_user)
    for client, can in ((manager, True), (reader, False)):
        listing = client.get("/loras/").content.decode()
        detail = client.get(f"/loras/{lora.pk}/").content.decode()
        assert ('id="scan-btn"' in listing) is can
        assert ('id="bulk-bar"' in listing) is can
        assert ('id="rename-btn"' in detail) is can
        assert ('id="edit-form"' in detail) is can
        assert ('id="manage-hint"' in detail) is not can
        assert 'id="fav-toggle"' in detail  # everyone keeps favourites
