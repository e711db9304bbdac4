"""Import (upload and server-side paths), validation, traversal, delete, list, has,
open-folder, file serving and set-as-preview of example images."""

from __future__ import annotations

import io
import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, PngImagePlugin

from example_images.files import example_path
from example_images.models import ExampleImage

pytestmark = pytest.mark.django_db


def _png(size=(16, 12), color=(10, 200, 30), parameters: str = "") -> bytes:
    buf = io.BytesIO()
    info = PngImagePlugin.PngInfo()
    if parameters:
        info.add_text("parameters", parameters)
    Image.new("RGB", size, color).save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def _upload(name="a.png", data=None, content_type="image/png"):
    return SimpleUploadedFile(name, data if data is not None else _png(), content_type)


def _folder_files(lora) -> list[str]:
    try:
        return sorted(os.listdir(example_path(lora.sha256)))
    except FileNotFoundError:
        return []


def test_upload_import_list_has_and_file(api_client, make_lora, anon_client):
    lora = make_lora("up")
    params = "a cat, <lora:up:0.8>\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, " \
             "CFG scale: 6.5, Seed: 1234, Size: 16x12"
    response = api_client.post("/api/example-images/import/", {
        "lora": lora.pk, "files": [_upload("one.png", _png(parameters=params)),
                                   _upload("two.jpg", _png(color=(1, 2, 3)))]},
        format="multipart")
    assert response.status_code == 201, response.json()
    rows = response.json()
    assert [r["source"] for r in rows] == ["import", "import"]
    assert rows[0]["prompt"] == "a cat, <lora:up:0.8>" and rows[0]["seed"] == 1234
    assert rows[0]["negative_prompt"] == "blurry" and rows[0]["cfg_scale"] == 6.5
    assert rows[0]["steps"] == 20 and rows[0]["sampler"] == "Euler a"
    assert "seed=1234" in rows[0]["use_url"] and "lora=up%3A1" in rows[0]["use_url"]
    for row in rows:
        assert not row["file"].startswith("/") and row["file"].startswith(lora.sha256 + "/")
    assert len(_folder_files(lora)) == 2
    listed = api_client.get(f"/api/loras/{lora.pk}/example-images/").json()
    assert [r["id"] for r in listed] == [r["id"] for r in rows]
    has = api_client.get(f"/api/example-images/has/?lora={lora.pk}").json()
    assert has == {"lora": lora.pk, "has": True, "count": 2}
    got = api_client.get(rows[0]["file_url"])
    assert got.status_code == 200 and got["Content-Type"] == "image/png"
    data = b"".join(got.streaming_content)
    assert Image.open(io.BytesIO(data)).info["parameters"] == params
    assert anon_client.get(rows[0]["file_url"]).status_code in (401, 403)


@pytest.mark.parametrize("data,code", [
    (b"not an image at all", "invalid_image"),
    (b"GIF89a" + b"\x00" * 20, "invalid_image"),
])
def test_invalid_upload_is_400_and_leaves_nothing(api_client, make_lora, data, code):
    lora = make_lora("bad")
    response = api_client.post("/api/example-images/import/", {
        "lora": lora.pk, "files": [_upload("ok.png"), _upload("bad.png", data)]},
        format="multipart")
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert _folder_files(lora) == [] and ExampleImage.objects.count() == 0


def test_oversized_upload_is_400(api_client, make_lora, settings):
    settings.EXAMPLE_IMAGES_MAX_BYTES = 1000
    lora = make_lora("big")
    big = _png(size=(400, 400), color=(1, 1, 1)) + b"\x00" * 2000
    response = api_client.post("/api/example-images/import/", {
        "lora": lora.pk, "files": [_upload("big.png", big)]}, format="multipart")
    assert response.status_code == 400 and response.json()["code"] == "file_too_large"
    assert _folder_files(lora) == []


def test_too_many_pixels_and_decompression_bomb_are_400(api_client, make_lora, settings):
    lora = make_lora("bomb")
    settings.EXAMPLE_IMAGES_MAX_PIXELS = 100
    response = api_client.post("/api/example-images/import/", {
        "lora": lora.pk, "files": [_upload("px.png", _png(size=(20, 20)))]}, format="multipart")
    assert response.status_code == 400 and response.json()["code"] == "image_too_large"
    settings.EXAMPLE_IMAGES_MAX_PIXELS = 10**12
    # A 1-bit PNG whose header claims 30000 x 30000 pixels: Pillow's bomb check refuses it.
    buf = io.BytesIO()
    Image.new("1", (30000, 30000)).save(buf, "PNG")
    response = api_client.post("/api/example-images/import/", {
        "lora": lora.pk, "files": [_upload("bomb.png", buf.getvalue())]}, format="multipart")
    assert response.status_code == 400 and response.json()["code"] == "image_too_large"
    assert _folder_files(lora) == [] and ExampleImage.objects.count() == 0


def test_server_side_import_inside_root(api_client, make_lora, tmp_path):
    lora = make_lora("srv")
    (tmp_path / "imports" / "sub").mkdir()
    (tmp_path / "imports" / "sub" / "x.png").write_bytes(_png())
    response = api_client.post("/api/example-images/import/", {
        "lora": lora.pk, "paths": ["sub/x.png", str(tmp_path / "imports" / "sub" / "x.png")]},
        format="json")
    assert response.status_code == 201, response.json()
    assert len(response.json()) == 2
    assert str(tmp_path) not in str(response.json())


@pytest.mark.parametrize("make_path", [
    lambda t: "../secret.png",
    lambda t: "sub/../../secret.png",
    lambda t: str(t / "secret.png"),
    lambda t: "/etc/passwd",
    lambda t: "link.png",
    lambda t: "x\x00.png",
    lambda t: "missing.png",
])
def test_server_side_import_traversal_is_400(api_client, make_lora, tmp_path, make_path):
    lora = make_lora("trav")
    (tmp_path / "secret.png").write_bytes(_png())
    os.symlink(tmp_path / "secret.png", tmp_path / "imports" / "link.png")
    response = api_client.post("/api/example-images/import/", {
        "lora": lora.pk, "paths": [make_path(tmp_path)]}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] in ("invalid_path", "invalid")
    assert str(tmp_path) not in response.content.decode()
    assert ExampleImage.objects.count() == 0


def test_delete_removes_file_and_row(api_client, make_lora, other_user):
    lora = make_lora("del")
    other = make_lora("other", seed=9)
    rows = api_client.post("/api/example-images/import/", {
        "lora": lora.pk, "files": [_upload()]}, format="multipart").json()
    path = example_path(rows[0]["file"])
    assert os.path.isfile(path)
    # Another LoRA's URL does not reach it.
    assert api_client.delete(f"/api/loras/{other.pk}/example-images/{rows[0]['id']}/") \
        .status_code == 404
    response = api_client.delete(f"/api/loras/{lora.pk}/example-images/{rows[0]['id']}/")
    assert response.status_code == 204
    assert not os.path.exists(path) and ExampleImage.objects.count() == 0
    assert _folder_files(lora) == []
    assert api_client.delete(f"/api/loras/{lora.pk}/example-images/{rows[0]['id']}/") \
        .status_code == 404


def test_set_preview_copies_image_next_to_lora(api_client, make_lora):
    lora = make_lora("prev")
    rows = api_client.post("/api/example-images/import/", {
        "lora": lora.pk, "files": [_upload(data=_png(color=(250, 0, 0)))]},
        format="multipart").json()
    response = api_client.post(
        f"/api/loras/{lora.pk}/example-images/{rows[0]['id']}/set-preview/")
    assert response.status_code == 200, response.json()
    lora.refresh_from_db()
    assert lora.preview == "prev.preview.png"
    preview = Image.open(os.path.join(lora.root.path, "prev.preview.png"))
    assert preview.convert("RGB").getpixel((0, 0)) == (250, 0, 0)


def test_open_folder_is_relative(api_client, make_lora):
    lora = make_lora("fold")
    body = api_client.get(f"/api/example-images/open-folder/?lora={lora.pk}").json()
    assert body == {"folder": lora.sha256, "path": f"examples/{lora.sha256}", "images": 0,
                    "exists": False, "opened": False}
    assert api_client.get("/api/example-images/open-folder/?lora=abc").status_code == 400
    assert api_client.get("/api/example-images/has/?lora=99999").status_code == 404


def test_import_for_unhashed_lora_is_400(api_client, make_lora):
    lora = make_lora("nohash")
    lora.sha256 = ""
    lora.save()
    response = api_client.post("/api/example-images/import/", {
        "lora": lora.pk, "files": [_upload()]}, format="multipart")
    assert response.status_code == 400 and response.json()["code"] == "lora_not_hashed"


def test_import_without_files_is_400(api_client, make_lora):
    lora = make_lora("none")
    response = api_client.post("/api/example-images/import/", {"lora": lora.pk}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "no_files"
