"""Fixtures of the images tests that run the real diffusers code on the tiny demo model."""

import pytest

from providers.diffusers_local import clear_pipeline_cache
from tests.factories import ModelProfileFactory


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """The demo SD pipeline folder (random weights, 8 MB), built once per test module."""
    from providers import demo

    return demo.build_demo_model(tmp_path_factory.mktemp("tiny") / "demo-sd-tiny")


@pytest.fixture
def tiny(db, tiny_model):
    """A ``diffusers_local`` profile ``tiny`` on it (2 steps by default, up to 256 px), with
    an empty pipeline cache before and after."""
    clear_pipeline_cache()
    profile = ModelProfileFactory(slug="tiny", provider="diffusers_local", pipeline_type="sd",
                                  model_path=str(tiny_model), is_default=False, max_width=256,
                                  max_height=256, default_steps=2)
    yield profile
    clear_pipeline_cache()
