"""Path traversal on every endpoint that takes a path: ``../``, absolute paths, symlinks out of
a root, Windows separators and drive letters, NUL bytes. Each is a 400 and nothing moves.

Endpoints taking paths are found in the OpenAPI schema (request properties named like a path,
see ``PATH_FIELDS``); ``test_every_path_endpoint_is_covered`` fails when a new one has no row in
``ENDPOINTS``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from drf_spectacular.generators import SchemaGenerator

from tests.support.bad_files import good_png
from tests.support.lora_files import write_lora

pytestmark = pytest.mark.django_db

# ``name`` is left out (display names everywhere); the one ``name`` that is a file stem
# (rename) has its own test below.
PATH_FIELDS = {"path", "paths", "folder", "template", "target", "dest", "destination",
               "file_path", "relative_path", "directory", "dir"}
# Relative-path payloads (a ``folder`` inside a root, a file ``name``, an import path).
TRAVERSALS = {
    "dotdot": "../outside",
    "dotdot_deep": "a/../../outside",
    "dotdot_only": "..",
    "absolute": "/etc",
    "absolute_tmp": "/tmp",
    "windows_sep": "a\\..\\..\\outside",
    "windows_drive": "C:\\Windows",
    "windows_drive_fwd": "C:/Windows",
    "nul": "a\x00b",
    "symlink_out": "escape/inside",  # ``escape`` is a symlink in the root pointing outside
}
NAME_TRAVERSALS = {  # a new file stem for rename: no separators at all
    "dotdot": "../evil", "slash": "a/b", "backslash": "a\\b", "nul": "a\x00b", "dot": "..",
    "absolute": "/tmp/evil",
}


def _path_operations() -> set[tuple[str, str, str]]:
    """(method, path, field) of every request body property that names a file system path."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    found = set()
    for path, item in schema["paths"].items():
        for method, op in item.items():
            for media in (op.get("requestBody") or {}).get("content", {}).values():
                body = media.get("schema", {})
                if "$ref" in body:
                    body = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]
                for field in body.get("properties", {}):
                    if field in PATH_FIELDS:
                        found.add((method, path, field))
    return found


@pytest.fixture
def world(tmp_path, settings):
    """A library root with one LoRA ``a`` (+ preview) and a symlink ``escape`` -> outside."""
    from loras.models import LibraryRoot
    from loras.services import lora_register

    settings.LORA_TRASH_DIR = str(tmp_path / "trash")
    root = tmp_path / "lib"
    outside = tmp_path / "outside"
    (outside / "inside").mkdir(parents=True)
    (outside / "secret.png").write_bytes(good_png())
    root.mkdir()
    (root / "escape").symlink_to(outside, target_is_directory=True)
    write_lora(root / "a.safetensors")
    (root / "a.preview.png").write_bytes(good_png())
    lib = LibraryRoot.objects.create(name="lib", path=str(root))
    lora = lora_register(path=str(root / "a.safetensors"))
    imports = tmp_path / "imports"
    imports.mkdir()
    (imports / "ok.png").write_bytes(good_png())
    (imports / "escape").symlink_to(outside, target_is_directory=True)
    settings.EXAMPLE_IMAGES_IMPORT_ROOTS = [str(imports)]
    settings.EXAMPLE_IMAGES_ROOT = tmp_path / "examples"
    return {"root": lib, "lora": lora, "tmp": tmp_path, "outside": outside}


def _tree(base: Path) -> list[str]:
    return sorted(str(p.relative_to(base)) for p in base.rglob("*"))


def _move(client, w, value):
    return client.post(f"/api/loras/{w['lora'].pk}/move/", {"folder": value}, format="json")


def _bulk_move(client, w, value):
    return client.post("/api/loras/bulk-move/", {"ids": [w["lora"].pk], "folder": value},
                       format="json")


def _download(client, w, value):
    from tests.support.fake_civitai import safetensors_bytes

    w["civitai"].add_version(version_id=1, model_id=10, data=safetensors_bytes(seed=1),
                             file_name="dl.safetensors")
    return client.post("/api/downloads/", {"model_version_id": 1, "folder": value,
                                           "root": w["root"].pk}, format="json")


def _organize(client, w, value):
    return client.post("/api/loras/auto-organize/?dry_run=1",
                       {"template": value + "/{base_model}"}, format="json")


def _example_import_path(client, w, value):
    if value == "escape/inside":
        value = "escape/secret.png"  # a real file behind the import root's symlink
    return client.post("/api/example-images/import/", {"lora": w["lora"].pk, "paths": [value]},
                       format="json")


def _rename(client, w, value):
    return client.post(f"/api/loras/{w['lora'].pk}/rename/", {"name": value}, format="json")


# (method, schema path, field) -> poster(client, world, value)
ENDPOINTS = {
    ("post", "/api/loras/{id}/move/", "folder"): _move,
    ("post", "/api/loras/bulk-move/", "folder"): _bulk_move,
    ("post", "/api/downloads/", "folder"): _download,
    ("post", "/api/loras/auto-organize/", "template"): _organize,
    ("post", "/api/example-images/import/", "paths"): _example_import_path,
}
# Fields that match PATH_FIELDS by name but are not file system paths, with the reason.
NOT_PATHS: set = set()
# Absolute by design (staff only): tested in test_library_root_path_must_be_a_real_absolute_dir.
ABSOLUTE_BY_DESIGN = {("post", "/api/library-roots/", "path"),
                      ("put", "/api/library-roots/{id}/", "path"),
                      ("patch", "/api/library-roots/{id}/", "path")}
PATH_OPS = _path_operations()
RELATIVE = [(k, v) for k, v in ENDPOINTS.items() if k in PATH_OPS]


PATH_CODES = ("invalid_path", "outside_root")  # a bad shape; a symlink out of the root


def _refused(r) -> bool:
    """400, or (bulk and plan answers) 200 where every item is refused as a bad path."""
    if r.status_code == 400:
        return r.json()["code"] in (*PATH_CODES, "invalid", "invalid_template")
    if r.status_code != 200:
        return False
    body = r.json()
    if "results" in body:  # bulk: per-item errors
        return all(not x["ok"] and x["code"] in PATH_CODES for x in body["results"])
    if "moves" in body:  # auto-organize dry run: the move is listed as a conflict, not a move
        return not body["moves"] and all(c["code"] in PATH_CODES for c in body["conflicts"])
    return False


def test_every_path_endpoint_is_covered():
    missing = sorted(PATH_OPS - set(ENDPOINTS) - NOT_PATHS - ABSOLUTE_BY_DESIGN)
    assert not missing, f"path-taking fields without a traversal test in ENDPOINTS: {missing}"


@pytest.mark.parametrize("kind", sorted(TRAVERSALS))
@pytest.mark.parametrize("key,poster", RELATIVE, ids=[f"{k[1]}:{k[2]}" for k, _ in RELATIVE])
def test_traversal_is_400_and_nothing_moves(world, api_client, fake_civitai, key, poster, kind):
    before = _tree(world["tmp"])
    world["civitai"] = fake_civitai
    r = poster(api_client, world, TRAVERSALS[kind])
    assert _refused(r), (key, kind, r.status_code, r.content[:400])
    assert _tree(world["tmp"]) == before, (key, kind)


@pytest.mark.parametrize("kind", sorted(NAME_TRAVERSALS))
def test_rename_refuses_names_that_are_paths(world, api_client, kind):
    before = _tree(world["tmp"])
    r = _rename(api_client, world, NAME_TRAVERSALS[kind])
    assert r.status_code == 400, (kind, r.status_code, r.content[:300])
    assert _tree(world["tmp"]) == before


def test_a_plain_folder_still_works(world, api_client):
    r = _move(api_client, world, "sub/dir")
    assert r.status_code == 200, r.content
    assert (world["tmp"] / "lib" / "sub" / "dir" / "a.safetensors").is_file()
    assert not list(world["outside"].rglob("*.safetensors"))


@pytest.mark.parametrize("value", ["relative/dir", "../x", "/no/such/dir", "/tmp\x00/x",
                                   "file"])
def test_library_root_path_must_be_a_real_absolute_dir(world, api_client, user, value):
    user.is_staff = True
    user.save()
    if value == "file":
        value = str(world["tmp"] / "lib" / "a.preview.png")
    r = api_client.post("/api/library-roots/", {"name": "x", "path": value}, format="json")
    assert r.status_code == 400 and "path" in r.json()["fields"], r.content


def test_list_filters_with_paths_do_not_fail(world, api_client):
    for value in TRAVERSALS.values():
        for param in ("folder", "folder_prefix"):
            r = api_client.get("/api/loras/", {param: value})
            assert r.status_code in (200, 400), (param, value, r.status_code)


# The fake Civitai server answers download look-ups on loopback.
from tests.support.fake_civitai import fake_civitai, fake_civitai_server  # noqa: E402,F401

assert os.sep == "/"  # these tests are about a POSIX server
