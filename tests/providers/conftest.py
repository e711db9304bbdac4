"""Fixtures for provider tests: the tiny demo model and LoRAs, built once per session."""

import hashlib
from pathlib import Path

import pytest


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def demo_assets(tmp_path_factory):
    """``{"model": Path, "warm"/"cool"/"mismatched": (Path, sha256)}`` in a session tmp dir.

    The model is the random-weight tiny SD pipeline of
    docs/offline-models.md#the-tiny-pipeline (about 8 MB, 0.1 s to build once torch is
    imported); "warm"/"cool" fit it, "mismatched" was made for wider UNet.
    """
    from providers import demo

    root = tmp_path_factory.mktemp("demo-assets")
    model = demo.build_demo_model(root / "demo-sd-tiny")
    assets = {"model": model}
    for key, builder in (
        ("warm", lambda p: demo.build_demo_lora(p, seed=1)),
        ("cool", lambda p: demo.build_demo_lora(p, seed=2)),
        ("mismatched", lambda p: demo.build_mismatched_lora(p)),
    ):
        path = builder(root / f"{key}.safetensors")
        assets[key] = (path, _sha256(path))
    return assets


@pytest.fixture(scope="session")
def demo_upscale_model(tmp_path_factory):
    """The tiny random-weight x4 ``StableDiffusionUpscalePipeline`` folder (about 10 MB)."""
    from providers.demo_upscale import build_demo_upscale_model

    return build_demo_upscale_model(tmp_path_factory.mktemp("demo-upscale") / "demo-sd-x4")


@pytest.fixture(scope="session")
def demo_latent_upscale_model(tmp_path_factory):
    """The tiny random-weight x2 ``StableDiffusionLatentUpscalePipeline`` folder (about 9 MB)."""
    from providers.demo_upscale import build_demo_latent_upscale_model

    return build_demo_latent_upscale_model(
        tmp_path_factory.mktemp("demo-latent-upscale") / "demo-sd-x2-latent")
