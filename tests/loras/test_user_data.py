"""Never lose what the user or the file said (issue 11, item 6;
docs/library.md#never-lose-what-the-user-or-the-file-said): trigger words merged by a Civitai
refresh, edits of trigger words and base model kept by refreshes and scans, and export ->
fresh database -> import restoring every user field."""

import json

import pytest
from django.core.management import call_command

from loras.models import LoraFavorite, LoraModel
from loras.services import library_roots_sync, lora_register
from loras.services.export import library_export, library_import
from loras.services.scan import library_scan
from tests.factories import UserFactory
from tests.support.fake_civitai import (  # noqa: F401
    fake_civitai,
    fake_civitai_server,
    safetensors_bytes,
)

pytestmark = pytest.mark.django_db
# kohya's ss_tag_frequency: the file's own three words (docs/library.md)
OWN = {"ss_tag_frequency": json.dumps({"10_zq": {"zq girl": 30, "zq hat": 20, "zq cape": 10}})}


@pytest.fixture
def library(settings, tmp_path):
    root = tmp_path / "library"
    root.mkdir()
    settings.LORA_ROOTS = [str(root)]
    settings.LORA_SCAN_WORKERS = 1
    library_roots_sync()
    return root


def test_a_refresh_keeps_the_files_three_words_and_adds_civitais(library, fake_civitai,
                                                                  api_client):
    data = safetensors_bytes(seed=21, metadata=OWN)
    fake_civitai.add_version(version_id=2101, model_id=210, data=data, trained_words=("zq",))
    (library / "zq.safetensors").write_bytes(data)
    lora = lora_register(path=str(library / "zq.safetensors"))
    assert lora.trigger_words == ["zq girl", "zq hat", "zq cape"]
    r = api_client.post(f"/api/loras/{lora.pk}/civitai/refresh/")
    assert r.status_code == 200, r.content
    # Civitai's declared word first, none of the file's three dropped (the report).
    assert r.json()["trigger_words"] == ["zq", "zq girl", "zq hat", "zq cape"]
    # The user's own words survive a second refresh too.
    api_client.patch(f"/api/loras/{lora.pk}/", {"trigger_words": [
        "zq", "zq girl", "zq hat", "zq cape", "my word"]}, format="json")
    r = api_client.post(f"/api/loras/{lora.pk}/civitai/refresh/")
    assert r.json()["trigger_words"] == ["zq", "zq girl", "zq hat", "zq cape", "my word"]


def test_edited_words_and_base_model_are_kept_by_refresh_and_scan(library, fake_civitai,
                                                                  api_client):
    data = safetensors_bytes(seed=22, metadata=OWN)
    fake_civitai.add_version(version_id=2201, model_id=220, data=data,
                             trained_words=("zq", "zq cape"), base_model="SDXL 1.0")
    (library / "zq.safetensors").write_bytes(data)
    lora = lora_register(path=str(library / "zq.safetensors"))
    api_client.post(f"/api/loras/{lora.pk}/civitai/refresh/")
    r = api_client.patch(f"/api/loras/{lora.pk}/", {
        "trigger_words": ["zq", "zq girl"], "base_model": "Illustrious"}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["user_overrides"] == {"trigger_words_removed": ["zq cape", "zq hat"],
                                          "base_model": True}
    r = api_client.post(f"/api/loras/{lora.pk}/civitai/refresh/")
    assert (r.json()["trigger_words"], r.json()["base_model"]) == (["zq", "zq girl"],
                                                                   "Illustrious")
    # A changed file is re-read by the scan: the header's words and base model do not win.
    data2 = safetensors_bytes(seed=23, metadata=OWN)
    (library / "zq.safetensors").write_bytes(data2)
    fake_civitai.add_version(version_id=2201, model_id=220, data=data2,  # re-uploaded file
                             trained_words=("zq", "zq cape"), base_model="SDXL 1.0")
    library_scan()
    lora.refresh_from_db()
    assert (lora.trigger_words, lora.base_model) == (["zq", "zq girl"], "Illustrious")
    # Typing a removed word again brings it back; an empty base model hands it back.
    r = api_client.patch(f"/api/loras/{lora.pk}/", {
        "trigger_words": ["zq", "zq girl", "zq cape"], "base_model": ""}, format="json")
    assert r.json()["user_overrides"] == {"trigger_words_removed": ["zq hat"],
                                          "base_model": False}
    r = api_client.post(f"/api/loras/{lora.pk}/civitai/refresh/")
    assert r.json()["base_model"] == "SDXL 1.0"
    assert r.json()["trigger_words"] == ["zq", "zq girl", "zq cape"]


def test_the_detail_page_edits_trigger_words_and_base_model(library, client, user):
    (library / "p.safetensors").write_bytes(safetensors_bytes(seed=24))
    lora = lora_register(path=str(library / "p.safetensors"))
    client.force_login(user)
    html = client.get(f"/loras/{lora.pk}/").content.decode()
    assert 'id="edit-triggers"' in html and 'id="edit-base-model"' in html
    assert 'id="relink-form"' in html


def _user_fields(lora: LoraModel) -> dict:
    return {k: getattr(lora, k) for k in (
        "tags", "notes", "usage_tips", "description", "trigger_words", "preferred_weight",
        "nsfw_level", "base_model", "excluded", "user_overrides", "civitai_model_id",
        "civitai_version_id", "civitai", "update_ignored_versions", "update_ignore_model",
        "favorite")}


def test_export_fresh_database_import_restores_every_field(library, tmp_path, api_client,
                                                           user, other_user):
    (library / "a.safetensors").write_bytes(safetensors_bytes(seed=25, metadata=OWN))
    (library / "b.safetensors").write_bytes(safetensors_bytes(seed=26))
    library_scan()
    a = LoraModel.objects.get(name="a")
    a.tags, a.notes, a.usage_tips, a.description = ["style", "ink"], "note", "tip", "desc"
    a.preferred_weight, a.nsfw_level, a.excluded = 0.65, 4, True
    a.civitai_model_id, a.civitai_version_id = 77, 78
    a.civitai = {"id": 78, "modelId": 77, "baseModel": "Pony"}
    a.update_ignored_versions, a.update_ignore_model, a.favorite = [79], True, True
    a.save()
    api_client.patch(f"/api/loras/{a.pk}/", {"trigger_words": ["zq girl", "mine"],
                                             "base_model": "Pony"}, format="json")
    LoraFavorite.objects.create(user=user, lora=a)
    LoraFavorite.objects.create(user=other_user, lora=a)
    a.refresh_from_db()
    expected = _user_fields(a)
    out = tmp_path / "export.json"
    call_command("library_export", output=str(out))
    exported = json.loads(out.read_text())
    assert exported == {**library_export(), "exported_at": exported["exported_at"]}
    assert [e["favorited_by"] for e in exported["loras"] if e["name"] == "a"] == [
        ["alice", "mallory"]]
    # The API gives the same document to a library manager.
    api = api_client.get("/api/library/export/").json()
    assert api["loras"] == exported["loras"]

    # A new install: no rows, new users with the same names, the same files scanned again.
    LoraModel.objects.all().delete()
    library_scan()
    fresh = LoraModel.objects.get(name="a")
    assert _user_fields(fresh) != expected
    call_command("library_import", str(out))
    fresh.refresh_from_db()
    assert _user_fields(fresh) == expected
    assert sorted(fresh.favorites.values_list("user__username", flat=True)) == ["alice",
                                                                               "mallory"]
    # Importing twice changes nothing more; an entry whose file is gone is reported.
    exported["loras"].append({**exported["loras"][0], "sha256": "f" * 64})
    result = library_import(data=exported)
    assert result["unmatched"] == ["f" * 64] and result["favorites"] == 0
    fresh.refresh_from_db()
    assert _user_fields(fresh) == expected


def test_import_refuses_what_is_not_an_export(tmp_path):
    from django.core.management.base import CommandError

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"loras": []}))
    with pytest.raises(CommandError, match="Not an atelier-library-export"):
        call_command("library_import", str(bad))


def test_export_needs_a_library_manager(other_user):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + Token.objects.create(user=other_user).key)
    r = client.get("/api/library/export/")
    assert r.status_code == 403 and r.json()["code"] == "permission_denied"
    assert UserFactory  # (users are made by the fixtures)
