"""Fixtures of the example-images tests: an isolated EXAMPLE_IMAGES_ROOT, LoRA rows, and the
fake Civitai server (tests/support/fake_civitai.py) publishing their versions and images."""

from __future__ import annotations

import hashlib

import pytest

from loras.models import LibraryRoot, LoraModel
from tests.factories import UserFactory
from tests.loras.library_perms import grant_manage_library
from tests.support.fake_civitai import (  # noqa: F401
    fake_civitai,
    fake_civitai_server,
    safetensors_bytes,
)


@pytest.fixture
def user(db):
    """alice (``api_client``) manages the library (``loras.manage_library``): downloading,
    importing, deleting and generating example images change the shared library."""
    return grant_manage_library(UserFactory(username="alice"))


@pytest.fixture(autouse=True)
def _examples_settings(settings, tmp_path):
    settings.EXAMPLE_IMAGES_ROOT = tmp_path / "examples"
    settings.EXAMPLE_IMAGES_RETRY_SECONDS = 0.0
    settings.EXAMPLE_IMAGES_PAGE_SIZE = 3
    settings.EXAMPLE_IMAGES_CONCURRENCY = 2
    settings.EXAMPLE_IMAGES_LIMIT_PER_MODEL = 5
    settings.EXAMPLE_IMAGES_NSFW_MAX = 2
    settings.EXAMPLE_IMAGES_IMPORT_ROOTS = [str(tmp_path / "imports")]
    (tmp_path / "imports").mkdir()
    yield


@pytest.fixture
def make_lora(db, tmp_path):
    """``make_lora(name, seed=, version_id=)``: a present LoRA row (the file is written too)."""
    root_dir = tmp_path / "loras"
    root_dir.mkdir(exist_ok=True)
    root = LibraryRoot.objects.get_or_create(path=str(root_dir))[0]

    def make(name: str = "style", *, seed: int = 0, version_id: int | None = None,
             trigger_words=("trig1",)) -> LoraModel:
        data = safetensors_bytes(seed=seed)
        (root_dir / f"{name}.safetensors").write_bytes(data)
        return LoraModel.objects.create(
            root=root, relative_path=f"{name}.safetensors", file_name=f"{name}.safetensors",
            name=name, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
            civitai_version_id=version_id, trigger_words=list(trigger_words))

    return make


@pytest.fixture
def published(fake_civitai, make_lora):
    """``published(name, version_id, images=7, nsfw_first=1)``: a LoRA whose version is on the
    fake Civitai with ``images`` example images (the first at browsing level ``nsfw_first``)."""

    def make(name: str, version_id: int, *, images: int = 7, nsfw_first: int = 1,
             link: bool = True) -> LoraModel:
        lora = make_lora(name, seed=version_id, version_id=version_id if link else None)
        fake_civitai.add_version(version_id=version_id, model_id=version_id + 5000,
                                 data=safetensors_bytes(seed=version_id), image_count=images,
                                 nsfw_level=nsfw_first)
        return lora

    return make
