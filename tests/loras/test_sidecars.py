"""Sidecars both ways (issue 11, item 5; docs/library.md#sidecars): A1111 / civitai-browser-plus
``<stem>.json`` read by the scan, ``<stem>.civitai.info`` and ``<stem>.json`` written after a
Civitai fetch and after edits (atomically, 0644 under umask 022, other keys kept), read back by
a fresh install; every ``<stem>.*`` file travels with its model; video previews."""

import json
import os
import stat

import pytest

from loras.models import LoraModel
from loras.services import library_roots_sync, lora_register
from loras.services.scan import library_scan
from tests.support.fake_civitai import (  # noqa: F401
    fake_civitai,
    fake_civitai_server,
    png_bytes,
    safetensors_bytes,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def library(settings, tmp_path):
    root = tmp_path / "library"
    root.mkdir()
    settings.LORA_ROOTS = [str(root)]
    settings.LORA_TRASH_DIR = str(tmp_path / "trash")
    settings.LORA_SCAN_WORKERS = 1
    library_roots_sync()
    return root


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def files(path) -> set[str]:
    return {os.path.relpath(os.path.join(d, f), path) for d, _, fs in os.walk(path) for f in fs}


def test_the_scan_reads_a1111_user_metadata(library):
    (library / "ink.safetensors").write_bytes(safetensors_bytes(seed=3))
    # The keys A1111's Lora "edit metadata" dialog saves (ui_edit_user_metadata.py).
    (library / "ink.json").write_text(json.dumps({
        "description": "Ink wash style", "sd version": "SDXL",
        "activation text": "inkwash, sumi-e ,  brush", "preferred weight": 0.7,
        "negative text": "", "notes": "from A1111"}))
    report = library_scan()
    assert report["errors"] == []
    lora = LoraModel.objects.get(name="ink")
    assert lora.trigger_words == ["inkwash", "sumi-e", "brush"]
    assert (lora.preferred_weight, lora.description, lora.notes) == (0.7, "Ink wash style",
                                                                      "from A1111")
    assert lora.base_model == "SDXL 1.0"  # from "sd version": the header names none


def test_a_zero_preferred_weight_is_a1111s_not_set(library):
    (library / "a.safetensors").write_bytes(safetensors_bytes(seed=4))
    (library / "a.json").write_text(json.dumps({"activation text": "", "preferred weight": 0}))
    library_scan()
    lora = LoraModel.objects.get(name="a")
    assert (lora.preferred_weight, lora.trigger_words) == (None, [])


def test_edits_write_a1111_json_keeping_other_keys(library, api_client, umask_022):
    path = library / "a.safetensors"
    path.write_bytes(safetensors_bytes(seed=5))
    (library / "a.json").write_text(json.dumps({"negative text": "blurry", "my tool": {"x": 1},
                                                "description": "kept", "notes": "old"}))
    lora = lora_register(path=str(path))
    r = api_client.patch(f"/api/loras/{lora.pk}/", {
        "trigger_words": ["alpha", "beta gamma"], "preferred_weight": 0.8, "notes": "new",
        "base_model": "SD 1.5"}, format="json")
    assert r.status_code == 200, r.content
    data = json.loads((library / "a.json").read_text())
    assert data == {"negative text": "blurry", "my tool": {"x": 1}, "description": "kept",
                    "activation text": "alpha, beta gamma", "preferred weight": 0.8,
                    "notes": "new", "sd version": "SD1"}
    assert mode(library / "a.json") == 0o644
    assert not [f for f in os.listdir(library) if f.endswith(".part")]  # no temporary left


def test_a_json_that_is_not_an_object_is_left_alone(library, api_client):
    path = library / "a.safetensors"
    path.write_bytes(safetensors_bytes(seed=6))
    (library / "a.json").write_text("[1, 2]")
    lora = lora_register(path=str(path))
    assert api_client.patch(f"/api/loras/{lora.pk}/", {"notes": "n"},
                            format="json").status_code == 200
    assert (library / "a.json").read_text() == "[1, 2]"


def test_write_sidecars_off_writes_nothing(library, api_client, settings):
    settings.WRITE_SIDECARS = False
    path = library / "a.safetensors"
    path.write_bytes(safetensors_bytes(seed=7))
    lora = lora_register(path=str(path))
    api_client.patch(f"/api/loras/{lora.pk}/", {"notes": "n"}, format="json")
    assert files(library) == {"a.safetensors"}


def test_a_civitai_refresh_writes_both_sidecars_and_a_fresh_install_reads_them(
        library, api_client, fake_civitai, umask_022):
    data = safetensors_bytes(seed=8)
    version = fake_civitai.add_version(version_id=801, model_id=80, data=data,
                                       trained_words=("qq style",), base_model="Pony")
    path = library / "styles" / "qq.safetensors"
    path.parent.mkdir()
    path.write_bytes(data)
    lora = lora_register(path=str(path))
    assert api_client.post(f"/api/loras/{lora.pk}/civitai/refresh/").status_code == 200
    info = json.loads((library / "styles" / "qq.civitai.info").read_text())
    assert info == version  # the version JSON as Civitai answered it
    a1111 = json.loads((library / "styles" / "qq.json").read_text())
    assert a1111["activation text"] == "qq style" and a1111["sd version"] == "SDXL"
    for name in ("qq.civitai.info", "qq.json", "qq.preview.png"):
        assert mode(library / "styles" / name) == 0o644, name

    # A fresh install (no rows, Civitai unreachable) reads the same from the sidecars.
    LoraModel.objects.all().delete()
    fake_civitai.reset()
    library_scan()
    again = LoraModel.objects.get(name="qq")
    assert (again.civitai_model_id, again.civitai_version_id) == (80, 801)
    assert again.trigger_words == ["qq style"] and again.base_model == "Pony"
    assert again.preview == "styles/qq.preview.png"
    assert fake_civitai.requests == []


def test_uploaded_previews_are_0644(library, api_client, umask_022):
    path = library / "a.safetensors"
    path.write_bytes(safetensors_bytes(seed=9))
    lora = lora_register(path=str(path))
    from django.core.files.uploadedfile import SimpleUploadedFile

    r = api_client.post(f"/api/loras/{lora.pk}/preview/",
                        {"file": SimpleUploadedFile("p.png", png_bytes())}, format="multipart")
    assert r.status_code == 200, r.content
    assert mode(library / "a.preview.png") == 0o644


def test_every_stem_file_travels_with_its_model(library, api_client):
    path = library / "a.safetensors"
    path.write_bytes(safetensors_bytes(seed=10))
    others = ["a.json", "a.txt", "a.preview.mp4", "a.civitai.info", "a.notes.yaml"]
    for name in others:
        (library / name).write_bytes(name.encode())
    # Another model whose stem starts with "a." and its own sidecar stay where they are.
    (library / "a.v2.safetensors").write_bytes(safetensors_bytes(seed=11))
    (library / "a.v2.json").write_bytes(b"{}")
    lora = lora_register(path=str(path))
    detail = api_client.get(f"/api/loras/{lora.pk}/").json()
    assert sorted(detail["sidecars"]) == sorted(others)

    assert api_client.post(f"/api/loras/{lora.pk}/rename/", {"name": "b"},
                           format="json").status_code == 200
    moved = {n.replace("a.", "b.", 1) for n in others} | {"b.safetensors"}
    assert files(library) == moved | {"a.v2.safetensors", "a.v2.json"}
    assert api_client.post(f"/api/loras/{lora.pk}/move/", {"folder": "x"},
                           format="json").status_code == 200
    assert files(library) == {f"x/{n}" for n in moved} | {"a.v2.safetensors", "a.v2.json"}
    assert api_client.delete(f"/api/loras/{lora.pk}/").status_code == 200
    assert files(library) == {"a.v2.safetensors", "a.v2.json"}
    assert api_client.post(f"/api/loras/{lora.pk}/restore/").status_code == 200
    assert files(library) == {f"x/{n}" for n in moved} | {"a.v2.safetensors", "a.v2.json"}
    assert (library / "x" / "b.txt").read_bytes() == b"a.txt"


def test_video_previews_are_recognised_and_shown(library, api_client, client):
    path = library / "clip.safetensors"
    path.write_bytes(safetensors_bytes(seed=12))
    (library / "clip.preview.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42fake")
    library_scan()
    lora = LoraModel.objects.get(name="clip")
    assert lora.preview == "clip.preview.mp4"
    item = api_client.get("/api/loras/").json()["results"][0]
    assert (item["preview_type"], item["preview_url"]) == ("video",
                                                           f"/api/loras/{lora.pk}/preview/")
    r = api_client.get(item["preview_url"])
    assert r.status_code == 200 and r["Content-Type"] == "video/mp4"
    from rest_framework.authtoken.models import Token

    user = Token.objects.get(key=api_client._credentials["HTTP_AUTHORIZATION"].split()[1]).user
    client.force_login(user)
    assert '<video id="preview-video"' in client.get(f"/loras/{lora.pk}/").content.decode()
    assert "<video muted loop" in client.get("/loras/").content.decode()
