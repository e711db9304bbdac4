"""Library operations on real files: rename, move, bulk move, trash, restore, traversal.

Helpers (``lib``, ``make_lora``) are shared with test_library_api.py and test_organize.py.
"""

import json
import os
import struct

import pytest

from loras.models import LibraryRoot, LoraModel, TrashEntry

pytestmark = pytest.mark.django_db


def safetensors_bytes(metadata: dict | None = None) -> bytes:
    """A small valid .safetensors file: 8-byte LE header length, JSON header, tensor data."""
    header = {"lora_up.weight": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}
    if metadata:
        header["__metadata__"] = metadata
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + bytes(range(16))


class Library:
    """A tmp library root with helpers to create LoRA files (+ sidecars) and rows."""

    def __init__(self, path, name="main"):
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.root = LibraryRoot.objects.create(path=str(path), name=name)

    def file(self, rel: str, data: bytes = b"x") -> str:
        full = self.path / rel
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_bytes(data)
        return str(full)

    def lora(self, rel: str, *, sidecars=(), sha256=None, **fields) -> LoraModel:
        data = safetensors_bytes({"ss_output_name": rel})
        self.file(rel, data)
        stem = rel.rsplit(".", 1)[0]
        for suffix in sidecars:
            self.file(stem + suffix, f"sidecar {suffix}".encode())
        folder, _, file_name = rel.rpartition("/")
        fields.setdefault("name", file_name.rsplit(".", 1)[0])
        fields.setdefault("size", len(data))
        return LoraModel.objects.create(
            root=self.root, relative_path=rel, folder=folder, file_name=file_name,
            sha256=sha256 or os.urandom(32).hex(), **fields)


@pytest.fixture
def lib(tmp_path, settings):
    settings.LORA_TRASH_DIR = tmp_path / "trash"
    return Library(tmp_path / "lib")


def tree(path) -> set[str]:
    """Every file under ``path`` as a relative '/' path."""
    out = set()
    for dirpath, _, files in os.walk(path):
        for f in files:
            out.add(os.path.relpath(os.path.join(dirpath, f), path).replace(os.sep, "/"))
    return out


SIDECARS = (".civitai.info", ".metadata.json", ".preview.png")


def test_rename_moves_file_and_every_sidecar(lib, api_client):
    lora = lib.lora("style/a.safetensors", sidecars=SIDECARS, preview="style/a.preview.png")
    r = api_client.post(f"/api/loras/{lora.pk}/rename/", {"name": "b"}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["relative_path"] == "style/b.safetensors"
    assert r.json()["name"] == "b"
    assert tree(lib.path) == {"style/b.safetensors", "style/b.civitai.info",
                              "style/b.metadata.json", "style/b.preview.png"}
    lora.refresh_from_db()
    assert (lora.name, lora.file_name, lora.preview) == ("b", "b.safetensors",
                                                         "style/b.preview.png")
    assert (lib.path / "style/b.civitai.info").read_bytes() == b"sidecar .civitai.info"


def test_rename_conflict_on_a_sidecar_leaves_everything_untouched(lib, api_client):
    lora = lib.lora("a.safetensors", sidecars=SIDECARS)
    lib.file("b.metadata.json", b"someone else's")
    before = {p: (lib.path / p).read_bytes() for p in tree(lib.path)}
    r = api_client.post(f"/api/loras/{lora.pk}/rename/", {"name": "b"}, format="json")
    assert r.status_code == 409 and r.json()["code"] == "name_taken"
    assert {p: (lib.path / p).read_bytes() for p in tree(lib.path)} == before
    lora.refresh_from_db()
    assert lora.relative_path == "a.safetensors" and lora.name == "a"


@pytest.mark.parametrize("name", ["../x", "a/b", "a\\b", "a\x00b", "..", ".hidden", ""])
def test_rename_refuses_unsafe_names(lib, api_client, name):
    lora = lib.lora("a.safetensors")
    r = api_client.post(f"/api/loras/{lora.pk}/rename/", {"name": name}, format="json")
    assert r.status_code == 400, r.content
    assert tree(lib.path) == {"a.safetensors"}


def test_move_creates_folder_and_carries_sidecars(lib, api_client):
    lora = lib.lora("a.safetensors", sidecars=(".civitai.info",))
    r = api_client.post(f"/api/loras/{lora.pk}/move/", {"folder": "sdxl/style"}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["folder"] == "sdxl/style"
    assert tree(lib.path) == {"sdxl/style/a.safetensors", "sdxl/style/a.civitai.info"}


def test_move_to_another_root(lib, api_client, tmp_path):
    other = Library(tmp_path / "other", name="other")
    lora = lib.lora("a.safetensors", sidecars=(".civitai.info",))
    r = api_client.post(f"/api/loras/{lora.pk}/move/", {"folder": "x", "root": other.root.pk},
                        format="json")
    assert r.status_code == 200, r.content
    assert r.json()["root"] == {"id": other.root.pk, "name": "other"}
    assert tree(lib.path) == set()
    assert tree(other.path) == {"x/a.safetensors", "x/a.civitai.info"}


@pytest.mark.parametrize("folder", ["../x", "/etc", "a\\b", "a\x00b", "a/../../b", "C:/x"])
def test_move_traversal_is_refused(lib, api_client, folder):
    lora = lib.lora("a.safetensors")
    r = api_client.post(f"/api/loras/{lora.pk}/move/", {"folder": folder}, format="json")
    assert r.status_code == 400
    assert r.json()["code"] in ("invalid_path", "invalid")  # DRF refuses NUL itself
    assert tree(lib.path) == {"a.safetensors"}


def test_move_through_a_symlink_out_of_the_root_is_refused(lib, api_client, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, lib.path / "escape")
    lora = lib.lora("a.safetensors")
    r = api_client.post(f"/api/loras/{lora.pk}/move/", {"folder": "escape"}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "outside_root"
    assert os.listdir(outside) == []


def test_move_conflict_is_409_and_nothing_overwritten(lib, api_client):
    lora = lib.lora("a.safetensors")
    lib.file("dest/a.safetensors", b"keep me")
    r = api_client.post(f"/api/loras/{lora.pk}/move/", {"folder": "dest"}, format="json")
    assert r.status_code == 409 and r.json()["code"] == "path_taken"
    assert (lib.path / "dest/a.safetensors").read_bytes() == b"keep me"
    assert (lib.path / "a.safetensors").exists()


def test_bulk_move_reports_conflicts_per_file(lib, api_client):
    a = lib.lora("a.safetensors", sidecars=(".civitai.info",))
    b = lib.lora("b.safetensors")
    c = lib.lora("sub/c.safetensors")
    lib.file("dest/b.civitai.info", b"not b's")  # a sidecar target is taken: b stays
    r = api_client.post("/api/loras/bulk-move/", {"ids": [a.pk, b.pk, c.pk, 999999],
                                                  "folder": "dest"}, format="json")
    assert r.status_code == 200, r.content
    results = {x["id"]: x for x in r.json()["results"]}
    assert results[a.pk]["ok"] and results[c.pk]["ok"]
    assert results[b.pk] == {"id": b.pk, "ok": False, "code": "path_taken",
                             "message": results[b.pk]["message"]}
    assert results[999999]["code"] == "not_found"
    assert tree(lib.path) == {"dest/a.safetensors", "dest/a.civitai.info", "dest/c.safetensors",
                              "dest/b.civitai.info", "b.safetensors"}
    assert (lib.path / "dest/b.civitai.info").read_bytes() == b"not b's"


def test_delete_moves_to_trash_and_restore_brings_everything_back(lib, api_client, settings):
    lora = lib.lora("style/a.safetensors", sidecars=SIDECARS)
    contents = {p: (lib.path / p).read_bytes() for p in tree(lib.path)}
    r = api_client.delete(f"/api/loras/{lora.pk}/")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["status"] == "trashed" and body["id"] == lora.pk
    assert body["trash_entry"]["trash_path"] == f"{lib.root.pk}/style/a.safetensors"
    assert tree(lib.path) == set()
    trash = settings.LORA_TRASH_DIR
    assert tree(trash) == {f"{lib.root.pk}/style/a{s}" for s in (".safetensors", *SIDECARS)}
    assert api_client.get("/api/loras/").json()["count"] == 0
    assert api_client.get(f"/api/loras/{lora.pk}/").status_code == 404

    r = api_client.post(f"/api/loras/{lora.pk}/restore/")
    assert r.status_code == 200, r.content
    assert r.json()["status"] == "present"
    assert {p: (lib.path / p).read_bytes() for p in tree(lib.path)} == contents
    assert tree(trash) == set()
    assert TrashEntry.objects.get().restored_at is not None


def test_trash_name_taken_gets_a_unique_suffix(lib, api_client, settings):
    first = lib.lora("a.safetensors", sidecars=(".civitai.info",))
    assert api_client.delete(f"/api/loras/{first.pk}/").status_code == 200
    second = lib.lora("a.safetensors", sidecars=(".civitai.info",))
    r = api_client.delete(f"/api/loras/{second.pk}/")
    assert r.status_code == 200, r.content
    assert r.json()["trash_entry"]["trash_path"] == f"{lib.root.pk}/a~1.safetensors"
    assert tree(settings.LORA_TRASH_DIR) == {
        f"{lib.root.pk}/a.safetensors", f"{lib.root.pk}/a.civitai.info",
        f"{lib.root.pk}/a~1.safetensors", f"{lib.root.pk}/a~1.civitai.info"}


def test_restore_conflict_overwrites_nothing(lib, api_client, settings):
    lora = lib.lora("a.safetensors", sidecars=(".civitai.info",))
    api_client.delete(f"/api/loras/{lora.pk}/")
    lib.file("a.civitai.info", b"new owner")
    r = api_client.post(f"/api/loras/{lora.pk}/restore/")
    assert r.status_code == 409 and r.json()["code"] == "path_taken"
    assert (lib.path / "a.civitai.info").read_bytes() == b"new owner"
    assert not (lib.path / "a.safetensors").exists()
    assert len(tree(settings.LORA_TRASH_DIR)) == 2
    lora.refresh_from_db()
    assert lora.status == "trashed"


def test_restore_refused_when_another_lora_took_the_path(lib, api_client):
    lora = lib.lora("a.safetensors")
    api_client.delete(f"/api/loras/{lora.pk}/")
    lib.lora("a.safetensors")
    r = api_client.post(f"/api/loras/{lora.pk}/restore/")
    assert r.status_code == 409 and r.json()["code"] == "path_taken"


def test_restore_of_a_present_lora_is_409(lib, api_client):
    lora = lib.lora("a.safetensors")
    r = api_client.post(f"/api/loras/{lora.pk}/restore/")
    assert r.status_code == 409 and r.json()["code"] == "not_trashed"


def test_bulk_delete_per_id_results(lib, api_client, settings):
    a = lib.lora("a.safetensors")
    b = lib.lora("b.safetensors")
    (lib.path / "b.safetensors").unlink()  # vanished from disk
    r = api_client.post("/api/loras/bulk-delete/", {"ids": [a.pk, b.pk]}, format="json")
    assert r.status_code == 200
    results = {x["id"]: x for x in r.json()["results"]}
    assert results[a.pk] == {"id": a.pk, "ok": True}
    assert results[b.pk]["ok"] is False and results[b.pk]["code"] == "file_missing"
    assert tree(settings.LORA_TRASH_DIR) == {f"{lib.root.pk}/a.safetensors"}


def test_failed_db_update_moves_files_back(lib, monkeypatch):
    from loras.services import library as services_library

    lora = lib.lora("a.safetensors", sidecars=(".civitai.info",))

    def boom(row):
        raise RuntimeError("db down")

    with pytest.raises(RuntimeError):
        services_library._relocate(lora=lora, root=lib.root, relative_path="x/a.safetensors",
                                   conflict_code="path_taken", extra_update=boom)
    assert tree(lib.path) == {"a.safetensors", "a.civitai.info"}
    lora.refresh_from_db()
    assert lora.relative_path == "a.safetensors"


def test_failure_mid_move_rolls_back_moved_files(lib, monkeypatch):
    from core.exceptions import ApplicationError
    from loras.services import library as services_library

    lora = lib.lora("a.safetensors", sidecars=SIDECARS)
    real = services_library.file_move_no_overwrite
    calls = []

    def flaky(src, dst):
        calls.append(src)
        if len(calls) == 3:
            raise PermissionError(13, "Permission denied")
        real(src, dst)

    monkeypatch.setattr(services_library, "file_move_no_overwrite", flaky)
    with pytest.raises(ApplicationError) as err:
        services_library.lora_move(lora=lora, folder="dest")
    assert err.value.code == "move_failed"
    monkeypatch.setattr(services_library, "file_move_no_overwrite", real)
    assert tree(lib.path) == {"a.safetensors", *(f"a{s}" for s in SIDECARS)}


def test_cross_device_copy_path_never_overwrites(tmp_path):
    from loras.services.library import _copy_no_overwrite

    src = tmp_path / "src.bin"
    src.write_bytes(b"data")
    taken = tmp_path / "taken.bin"
    taken.write_bytes(b"old")
    with pytest.raises(FileExistsError):
        _copy_no_overwrite(str(src), str(taken))
    assert taken.read_bytes() == b"old" and src.exists()
    assert sorted(os.listdir(tmp_path)) == ["src.bin", "taken.bin"]  # no temp file left
    _copy_no_overwrite(str(src), str(tmp_path / "new.bin"))
    assert (tmp_path / "new.bin").read_bytes() == b"data" and not src.exists()


def test_exclude_and_include(lib, api_client):
    lora = lib.lora("a.safetensors")
    r = api_client.post(f"/api/loras/{lora.pk}/exclude/", {"excluded": True}, format="json")
    assert r.status_code == 200 and r.json()["excluded"] is True
    assert api_client.get("/api/loras/").json()["count"] == 0
    assert api_client.get("/api/loras/?excluded=true").json()["count"] == 1
    api_client.post(f"/api/loras/{lora.pk}/exclude/", {"excluded": False}, format="json")
    assert api_client.get("/api/loras/").json()["count"] == 1
