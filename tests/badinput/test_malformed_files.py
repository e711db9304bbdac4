"""Malformed files (``tests/support/bad_files.py``) posted to every upload endpoint: each is a
4xx with the error body, nothing is stored, nothing crashes. Upload endpoints are found in the
OpenAPI schema (multipart bodies with a binary field) so a new one fails
``test_every_upload_endpoint_is_covered`` until it gets a row in ``UPLOADS``.

Corrupt ``.safetensors`` files (truncated, oversized header length, non-UTF-8 metadata,
zero-byte, not JSON) go through ``lora_register`` (what downloads and the CLI use): each gives a
per-file error (a library scan of the same corpus is ``tests/loras/test_scan.py``).
"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from drf_spectacular.generators import SchemaGenerator

from core.exceptions import ApplicationError
from tests.support.bad_files import BAD_IMAGE_NAMES, BAD_SAFETENSORS, bad_images, good_png
from tests.support.lora_files import write_lora

pytestmark = pytest.mark.django_db


def _upload_operations() -> set[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    found = set()
    for path, item in schema["paths"].items():
        for method, op in item.items():
            content = (op.get("requestBody") or {}).get("content", {})
            body = content.get("multipart/form-data", {}).get("schema", {})
            if "$ref" in body:
                body = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]
            props = body.get("properties", {})
            if any(p.get("format") == "binary" or p.get("items", {}).get("format") == "binary"
                   for p in props.values()):
                found.add((method, path))
    return found


@pytest.fixture
def lora(tmp_path, settings):
    from loras.models import LibraryRoot
    from loras.services import lora_register

    settings.LORA_TRASH_DIR = str(tmp_path / "trash")
    root = tmp_path / "lib"
    root.mkdir()
    LibraryRoot.objects.create(name="lib", path=str(root))
    write_lora(root / "a.safetensors")
    return lora_register(path=str(root / "a.safetensors"))


def _preview(client, lora, name, data):
    return client.post(f"/api/loras/{lora.pk}/preview/",
                       {"file": SimpleUploadedFile(name, data)}, format="multipart")


def _example_import(client, lora, name, data):
    return client.post("/api/example-images/import/",
                       {"lora": lora.pk, "files": [SimpleUploadedFile(name, data)]},
                       format="multipart")


def _edit_image(client, lora, name, data):
    return client.post("/api/edit/", {"prompt": "a kite", "image": SimpleUploadedFile(name, data)},
                       format="multipart")


def _edit_mask(client, lora, name, data):
    return client.post("/api/edit/", {"prompt": "a kite",
                                      "image": SimpleUploadedFile("ok.png", good_png((64, 64))),
                                      "mask": SimpleUploadedFile(name, data)},
                       format="multipart")


def _upscale(client, lora, name, data):
    return client.post("/api/upscale/", {"factor": 2, "image": SimpleUploadedFile(name, data)},
                       format="multipart")


def _png_info(client, lora, name, data):
    return client.post("/api/png-info/", {"image": SimpleUploadedFile(name, data)},
                       format="multipart")


def _openai_edit(client, lora, name, data):
    # The OpenAI Images API adapter (compat/openai): its own error shape {"error": {...}}.
    return client.post("/v1/images/edits", {"prompt": "a kite", "model": "fake",
                                            "image": SimpleUploadedFile(name, data)},
                       format="multipart")


# (method, schema path) -> [(label, poster)]
UPLOADS = {
    ("post", "/api/png-info/"): [("png_info", _png_info)],
    ("post", "/v1/images/edits"): [("openai_edit", _openai_edit)],
    ("post", "/api/loras/{id}/preview/"): [("preview", _preview)],
    ("post", "/api/example-images/import/"): [("example_import", _example_import)],
    ("post", "/api/edit/"): [("edit_image", _edit_image), ("edit_mask", _edit_mask)],
    ("post", "/api/upscale/"): [("upscale", _upscale)],
}
UPLOAD_OPS = _upload_operations()
POSTERS = [(label, poster) for key, rows in UPLOADS.items() if key in UPLOAD_OPS
           for label, poster in rows]


def _stored_state(tmp_path):
    """What an upload could leave behind: rows and files under MEDIA_ROOT and the library."""
    from django.conf import settings

    from images.models import GenerationRequest, Image
    from jobs.models import Job

    rows = (Job.objects.count(), GenerationRequest.objects.count(), Image.objects.count())
    try:
        from example_images.models import ExampleImage
        rows += (ExampleImage.objects.count(),)
    except ImportError:  # pragma: no cover - the app exists in this project
        pass
    from pathlib import Path

    files = sorted(str(p) for base in (Path(settings.MEDIA_ROOT), tmp_path / "lib")
                   if base.exists() for p in base.rglob("*") if p.is_file())
    return rows, files


def test_every_upload_endpoint_is_covered():
    missing = sorted(UPLOAD_OPS - set(UPLOADS))
    assert not missing, f"upload endpoints without a bad-file poster in UPLOADS: {missing}"


@pytest.mark.parametrize("kind", BAD_IMAGE_NAMES)
@pytest.mark.parametrize("label,poster", POSTERS, ids=[label for label, _ in POSTERS])
def test_bad_image_is_refused_and_nothing_stored(lora, api_client, fake_profile, tmp_path,
                                                 label, poster, kind):
    name, data = bad_images()[kind]
    before = _stored_state(tmp_path)
    r = poster(api_client, lora, name, data)
    assert 400 <= r.status_code < 500, (label, kind, r.status_code, r.content[:300])
    body = r.json()
    error = body.get("error") if isinstance(body.get("error"), dict) else body  # OpenAI's shape
    assert error["code"] and error["message"], body
    assert _stored_state(tmp_path) == before, (label, kind)


# The OpenAI adapter answers when the job has ended: inside this test's transaction no worker can
# see the job, so its good-image case is tests/compat (a real server and worker).
ACCEPTS_AT_ONCE = [(label, poster) for label, poster in POSTERS if label != "openai_edit"]


@pytest.mark.parametrize("label,poster", ACCEPTS_AT_ONCE,
                         ids=[label for label, _ in ACCEPTS_AT_ONCE])
def test_a_good_image_is_accepted(lora, api_client, fake_profile, label, poster):
    """The same posters with a valid image succeed: the refusals above are about the file."""
    r = poster(api_client, lora, "ok.png", good_png((64, 64)))
    assert r.status_code in (200, 201, 202), (label, r.status_code, r.content[:300])


@pytest.mark.parametrize("kind", sorted(BAD_SAFETENSORS))
def test_corrupt_safetensors_register_is_a_per_file_error(tmp_path, kind):
    from loras.models import LoraModel
    from loras.services import lora_register

    path = tmp_path / "lib" / f"{kind}.safetensors"
    BAD_SAFETENSORS[kind](path)
    try:
        lora = lora_register(path=str(path))
    except ApplicationError as exc:
        assert 400 <= exc.status < 500 and exc.code, (kind, exc.code)
        return
    # Recorded with its problem (the file stays visible as broken), not a crash.
    lora.refresh_from_db()
    assert lora.scan_error, (kind, lora.status)
    assert LoraModel.objects.filter(pk=lora.pk).exists()
