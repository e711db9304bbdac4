"""Files never escape their root (issue 12, item 3): a LoRA whose real path leaves its library
root through a symlinked folder, a symlinked file or a symlinked sidecar is listed (flagged
``outside_root``) but every mutation through the API answers 400 ``outside_root`` and touches
nothing, for a non-staff library manager (``loras.manage_library``). Reproduces the red-team
finding (``DELETE`` removed the outside file and its sidecar, ``restore`` answered
``invalid_path``, ``move`` pulled the file into the root; ComfyUI-Lora-Manager #445 deleted user
folders the same way).

Everything runs on real files in ``tmp_path``, through the API and the real scanner.
"""

from __future__ import annotations

import os

import pytest

from loras.models import LibraryRoot, LoraModel, TrashEntry
from loras.services.scan import library_scan
from tests.factories import UserFactory
from tests.loras.library_perms import grant_manage_library
from tests.support.bad_files import good_png
from tests.support.lora_files import write_lora

pytestmark = pytest.mark.django_db


def _tree(path) -> dict[str, bytes]:
    """Every file under ``path`` (symlinks not followed) with its bytes, or the link target."""
    out = {}
    for dirpath, dirs, files in os.walk(path):
        for name in dirs + files:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, path)
            if os.path.islink(full):
                out[rel] = ("link->" + os.readlink(full)).encode()
            elif name in files:
                with open(full, "rb") as fh:
                    out[rel] = fh.read()
    return out


@pytest.fixture
def user(db):
    """alice: a library manager (``loras.manage_library``), not staff: allowed to change the
    library, and still refused anything outside a root."""
    return grant_manage_library(UserFactory(username="alice"))


@pytest.fixture
def world(tmp_path, settings, user):
    """``lib/`` (a root) with ``inside.safetensors`` and ``linked -> x/outside/`` holding
    ``outside.safetensors`` + ``outside.civitai.info``; scanned."""
    assert not user.is_staff
    settings.LORA_TRASH_DIR = str(tmp_path / "trash")
    settings.LORA_SCAN_WORKERS = 1
    lib = tmp_path / "lib"
    outside = tmp_path / "x" / "outside"
    lib.mkdir()
    write_lora(lib / "inside.safetensors")
    write_lora(outside / "outside.safetensors", rank=2)
    (outside / "outside.civitai.info").write_text('{"id": 5, "modelId": 6}')
    os.symlink(outside, lib / "linked")
    root = LibraryRoot.objects.create(name="lib", path=str(lib))
    settings.LORA_ROOTS = [str(lib)]
    library_scan(roots=[root])
    escaped = LoraModel.objects.get(relative_path="linked/outside.safetensors")
    return {"tmp": tmp_path, "lib": lib, "outside": outside, "root": root, "lora": escaped,
            "before": _tree(tmp_path / "x")}


def _untouched(world):
    assert _tree(world["tmp"] / "x") == world["before"]
    assert not os.path.exists(world["tmp"] / "trash") or not _tree(world["tmp"] / "trash")
    assert not TrashEntry.objects.exists()


def _outside_root(response):
    assert response.status_code == 400, (response.status_code, response.content[:300])
    body = response.json()
    assert body["code"] == "outside_root" and body["message"], body
    assert str(os.sep + "x" + os.sep) not in body["message"]  # no absolute server path
    return body


def test_the_escaped_file_is_listed_and_flagged(world, api_client):
    listed = {row["relative_path"]: row for row in api_client.get("/api/loras/").json()["results"]}
    assert set(listed) == {"inside.safetensors", "linked/outside.safetensors"}
    assert listed["linked/outside.safetensors"]["outside_root"] is True
    assert listed["inside.safetensors"]["outside_root"] is False
    detail = api_client.get(f"/api/loras/{world['lora'].pk}/").json()
    assert detail["outside_root"] is True


def test_delete_by_a_non_staff_user_is_refused_and_nothing_moves(world, api_client):
    _outside_root(api_client.delete(f"/api/loras/{world['lora'].pk}/"))
    _untouched(world)
    world["lora"].refresh_from_db()
    assert world["lora"].status == "present"
    # Nothing was trashed, so there is nothing to restore.
    r = api_client.post(f"/api/loras/{world['lora'].pk}/restore/")
    assert r.status_code == 409 and r.json()["code"] == "not_trashed", r.content
    _untouched(world)


def test_bulk_delete_refuses_the_escaped_file_only(world, api_client):
    inside = LoraModel.objects.get(relative_path="inside.safetensors")
    r = api_client.post("/api/loras/bulk-delete/", {"ids": [world["lora"].pk, inside.pk]},
                        format="json")
    assert r.status_code == 200, r.content
    results = {x["id"]: x for x in r.json()["results"]}
    assert results[world["lora"].pk]["code"] == "outside_root"
    assert results[inside.pk]["ok"] is True
    assert not os.path.exists(world["lib"] / "inside.safetensors")  # the inside one went
    assert _tree(world["tmp"] / "x") == world["before"]


def test_move_does_not_pull_the_file_into_the_root(world, api_client):
    _outside_root(api_client.post(f"/api/loras/{world['lora'].pk}/move/", {"folder": "here"},
                                  format="json"))
    assert not os.path.exists(world["lib"] / "here")
    r = api_client.post("/api/loras/bulk-move/", {"ids": [world["lora"].pk], "folder": "here"},
                        format="json")
    assert r.json()["results"][0]["code"] == "outside_root", r.content
    _untouched(world)
    world["lora"].refresh_from_db()
    assert world["lora"].relative_path == "linked/outside.safetensors"


def test_rename_and_preview_are_refused(world, api_client):
    pk = world["lora"].pk
    _outside_root(api_client.post(f"/api/loras/{pk}/rename/", {"name": "b"}, format="json"))
    png = good_png()
    from django.core.files.uploadedfile import SimpleUploadedFile

    r = api_client.post(f"/api/loras/{pk}/preview/",
                        {"file": SimpleUploadedFile("p.png", png, "image/png")},
                        format="multipart")
    _outside_root(r)
    _untouched(world)


def test_exclude_and_patch_touch_no_file_and_are_allowed(world, api_client):
    pk = world["lora"].pk
    r = api_client.post(f"/api/loras/{pk}/exclude/", {"excluded": True}, format="json")
    assert r.status_code == 200 and r.json()["excluded"] is True, r.content
    r = api_client.patch(f"/api/loras/{pk}/", {"notes": "kept"}, format="json")
    assert r.status_code == 200, r.content
    _untouched(world)


def test_auto_organize_leaves_the_escaped_file(world, api_client, user):
    from loras.services.organize import organize_run, organize_start

    plan = api_client.post("/api/loras/auto-organize/?dry_run=1",
                           {"template": "sorted"}, format="json").json()
    assert [m["from"] for m in plan["moves"]] == ["inside.safetensors"], plan
    conflict = next(c for c in plan["conflicts"] if c["id"] == world["lora"].pk)
    assert conflict["code"] == "outside_root"
    job = organize_start(user=user, template="sorted", enqueue=False)
    job = organize_run(job_id=str(job.pk), template="sorted")
    assert job.status == "succeeded", job.error if hasattr(job, "error") else job
    assert os.path.isfile(world["lib"] / "sorted" / "inside.safetensors")
    assert _tree(world["tmp"] / "x") == world["before"]
    assert not os.path.exists(world["lib"] / "sorted" / "outside.safetensors")


def test_a_symlinked_file_and_a_symlinked_sidecar_are_guarded_too(world, api_client):
    """The file itself a symlink to outside; and a LoRA inside whose sidecar links outside."""
    lib, outside = world["lib"], world["outside"]
    write_lora(outside / "target.safetensors", rank=3)
    os.symlink(outside / "target.safetensors", lib / "filelink.safetensors")
    write_lora(lib / "side.safetensors", rank=5)
    (outside / "secret.info").write_text('{"secret": true}')
    os.symlink(outside / "secret.info", lib / "side.civitai.info")
    library_scan(roots=[world["root"]])
    before = _tree(world["tmp"] / "x")
    filelink = LoraModel.objects.get(relative_path="filelink.safetensors")
    side = LoraModel.objects.get(relative_path="side.safetensors")
    for lora in (filelink, side):
        _outside_root(api_client.delete(f"/api/loras/{lora.pk}/"))
        _outside_root(api_client.post(f"/api/loras/{lora.pk}/move/", {"folder": "m"},
                                      format="json"))
        _outside_root(api_client.post(f"/api/loras/{lora.pk}/rename/", {"name": "n"},
                                      format="json"))
    assert _tree(world["tmp"] / "x") == before
    assert os.path.islink(lib / "filelink.safetensors")
    assert os.path.islink(lib / "side.civitai.info")
    assert os.path.isfile(lib / "side.safetensors")


def test_restore_to_a_path_that_now_leaves_the_root_is_refused(world, api_client):
    """A LoRA trashed while its folder was real; the folder is then replaced by a symlink to
    outside: restore must not write outside the root."""
    lib = world["lib"]
    write_lora(lib / "sub" / "c.safetensors", rank=6)
    library_scan(roots=[world["root"]])
    lora = LoraModel.objects.get(relative_path="sub/c.safetensors")
    assert api_client.delete(f"/api/loras/{lora.pk}/").status_code == 200
    os.rmdir(lib / "sub")
    elsewhere = world["tmp"] / "x" / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, lib / "sub")
    _outside_root(api_client.post(f"/api/loras/{lora.pk}/restore/"))
    assert os.listdir(elsewhere) == []
    lora.refresh_from_db()
    assert lora.status == "trashed"


def test_move_into_a_symlinked_folder_that_leaves_the_root_is_refused(world, api_client):
    inside = LoraModel.objects.get(relative_path="inside.safetensors")
    _outside_root(api_client.post(f"/api/loras/{inside.pk}/move/", {"folder": "linked"},
                                  format="json"))
    assert os.path.isfile(world["lib"] / "inside.safetensors")
    _untouched(world)


# -- one entry per file ---------------------------------------------------------------------
def test_a_file_reachable_by_two_paths_is_one_entry(tmp_path, settings):
    """A symlinked folder, a symlinked file and a hard link to files inside the same root: one
    row per file (device + inode), at the real path, whatever order the folder is listed in;
    of two hard-linked names (no symlink on either) the first in path order is kept."""
    settings.LORA_SCAN_WORKERS = 1
    lib = tmp_path / "lib"
    write_lora(lib / "real" / "a.safetensors")
    write_lora(lib / "real" / "h.safetensors", rank=2)
    os.symlink(lib / "real", lib / "0alias")  # sorts before "real"
    os.symlink(lib / "real" / "a.safetensors", lib / "0file.safetensors")
    os.link(lib / "real" / "h.safetensors", lib / "real" / "0hard.safetensors")
    root = LibraryRoot.objects.create(name="lib", path=str(lib))
    report = library_scan(roots=[root])
    paths = sorted(LoraModel.objects.values_list("relative_path", flat=True))
    assert paths == ["real/0hard.safetensors", "real/a.safetensors"], (paths, report)
    assert report["files_seen"] == 2
    assert sorted(report["aliases"], key=lambda a: a["path"]) == [
        {"root": root.pk, "path": "0file.safetensors",
         "same_as": {"root": root.pk, "path": "real/a.safetensors"}},
        {"root": root.pk, "path": "real/h.safetensors",
         "same_as": {"root": root.pk, "path": "real/0hard.safetensors"}}]
    assert [loop["path"] for loop in report["loops"]] == ["0alias"]
    assert not report["outside_root"]
    again = library_scan(roots=[root])
    assert (again["unchanged"], again["new"], again["missing"]) == (2, 0, 0)
    assert sorted(LoraModel.objects.values_list("relative_path", flat=True)) == paths


def test_a_folder_linked_from_one_root_into_another_is_one_entry(tmp_path, settings):
    settings.LORA_SCAN_WORKERS = 1
    first, second = tmp_path / "a_first", tmp_path / "b_second"
    write_lora(second / "sub" / "x.safetensors")
    first.mkdir()
    os.symlink(second / "sub", first / "sub")
    roots = [LibraryRoot.objects.create(name="a", path=str(first)),
             LibraryRoot.objects.create(name="b", path=str(second))]
    report = library_scan(roots=roots)
    rows = list(LoraModel.objects.values_list("root__name", "relative_path"))
    assert rows == [("b", "sub/x.safetensors")]
    assert report["aliases"] == [{"root": roots[0].pk, "path": "sub/x.safetensors",
                                  "same_as": {"root": roots[1].pk, "path": "sub/x.safetensors"}}]


def test_the_scan_report_names_files_outside_their_root(world):
    report = library_scan(roots=[world["root"]])
    assert report["outside_root"] == [{"root": world["root"].pk,
                                       "path": "linked/outside.safetensors"}]


def test_a_civitai_refresh_writes_no_preview_next_to_an_escaped_file(world, api_client,
                                                                      fake_civitai):
    """The refresh still fills metadata (a read-only file is still a known LoRA), but its
    preview download is not written into the folder outside the root."""
    data = (world["outside"] / "outside.safetensors").read_bytes()
    fake_civitai.add_version(version_id=31, model_id=32, data=data)
    r = api_client.post(f"/api/loras/{world['lora'].pk}/civitai/refresh/")
    assert r.status_code == 200, r.content
    assert r.json()["civitai_version_id"] == 31
    assert fake_civitai.count("/img/") == 0  # not even fetched
    _untouched(world)


# The fake Civitai server on loopback.
from tests.support.fake_civitai import fake_civitai, fake_civitai_server  # noqa: E402,F401


def test_detail_page_offers_no_file_actions_for_a_file_outside_its_root(world, user, client):
    """The page says why and shows no rename, move or delete for the escaped file; the file
    inside the root keeps them."""
    client.force_login(user)
    page = client.get(f"/loras/{world['lora'].pk}/").content.decode()
    assert 'id="outside-root-notice"' in page
    assert 'id="delete-btn"' not in page and 'id="rename-btn"' not in page
    inside = LoraModel.objects.get(relative_path="inside.safetensors")
    page = client.get(f"/loras/{inside.pk}/").content.decode()
    assert 'id="delete-btn"' in page and 'id="outside-root-notice"' not in page
