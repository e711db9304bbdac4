"""Example-image files never escape ``EXAMPLE_IMAGES_ROOT`` (issue 12, item 3): a LoRA's
folder there that is a symlink to elsewhere refuses imports with 400 ``outside_root`` and a
delete removes the row but never the file behind the link. Real files, through the API."""

from __future__ import annotations

import hashlib
import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from example_images.models import ExampleImage
from loras.models import LibraryRoot, LoraModel
from tests.support.bad_files import good_png
from tests.support.fake_civitai import safetensors_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def linked(tmp_path, settings):
    """A LoRA whose example folder ``<examples>/<sha256>`` links to ``tmp/outside``."""
    settings.EXAMPLE_IMAGES_ROOT = tmp_path / "examples"
    data = safetensors_bytes(seed=3)
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "e.safetensors").write_bytes(data)
    root = LibraryRoot.objects.create(name="lib", path=str(lib))
    sha = hashlib.sha256(data).hexdigest()
    lora = LoraModel.objects.create(root=root, relative_path="e.safetensors",
                                    file_name="e.safetensors", name="e", size=len(data),
                                    sha256=sha)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.png").write_bytes(good_png())
    (tmp_path / "examples").mkdir()
    os.symlink(outside, tmp_path / "examples" / sha)
    return {"lora": lora, "outside": outside, "sha": sha}


def test_import_into_a_linked_folder_is_refused(linked, api_client):
    r = api_client.post("/api/example-images/import/", {
        "lora": linked["lora"].pk,
        "files": [SimpleUploadedFile("a.png", good_png(), "image/png")]}, format="multipart")
    assert r.status_code == 400 and r.json()["code"] == "outside_root", r.content
    assert sorted(os.listdir(linked["outside"])) == ["keep.png"]
    assert not ExampleImage.objects.exists()


def test_delete_through_a_linked_folder_keeps_the_file(linked, api_client):
    image = ExampleImage.objects.create(lora=linked["lora"], sha256=linked["sha"],
                                        file=f"{linked['sha']}/keep.png",
                                        source=ExampleImage.Source.IMPORT, width=8, height=8)
    r = api_client.delete(f"/api/loras/{linked['lora'].pk}/example-images/{image.pk}/")
    assert r.status_code == 204, r.content
    assert sorted(os.listdir(linked["outside"])) == ["keep.png"]
    assert not ExampleImage.objects.exists()
