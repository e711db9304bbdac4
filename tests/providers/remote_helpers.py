"""Helpers for the remote provider tests: fake-server fixtures, a recording sink, specs."""

from __future__ import annotations

import pytest

from providers.base import EditSpec, GenerationSpec, LoraSpec, ModelSpec

from .fakes.gemini import FakeGemini
from .fakes.openai import FakeOpenai
from .fakes.parasail import FakeParasail
from .fakes.replicate import FakeReplicate
from .fakes.runware import FakeRunware
from .fakes.sdnext import FakeSdnext

FAST = {"timeout": 5.0, "max_retries": 2, "backoff": 0.05, "max_retry_wait": 10.0}


class RecordingSink:
    """A ProgressSink that records steps and cancels when ``cancel_after`` steps were seen
    (or when :attr:`cancel` is set)."""

    def __init__(self, cancel_after: int | None = None):
        self.steps: list[tuple[int, int, str]] = []
        self.cancel = False
        self.cancel_after = cancel_after

    def step(self, step, total_steps, message=""):
        self.steps.append((step, total_steps, message))

    def should_cancel(self):
        if self.cancel_after is not None and len(self.steps) >= self.cancel_after:
            return True
        return self.cancel


def spec(model: str = "", *, pipeline_type: str = "sd", prompt: str = "a red fox", n: int = 1,
         width: int = 64, height: int = 64, seed: int = 7, steps: int = 4, loras=(),
         options: dict | None = None) -> GenerationSpec:
    return GenerationSpec(model=ModelSpec(pipeline_type=pipeline_type, model=model,
                                          options=options or {}),
                          prompt=prompt, negative_prompt="blurry", width=width, height=height,
                          steps=steps, guidance_scale=6.5, seed=seed, n=n, loras=tuple(loras))


def edit_spec(base: GenerationSpec, *, mask: bool = False, strength: float = 0.6) -> EditSpec:
    from PIL import Image, ImageDraw

    source = Image.new("RGB", (base.width, base.height), (10, 120, 200))
    mask_image = None
    if mask:
        mask_image = Image.new("L", source.size, 0)
        ImageDraw.Draw(mask_image).rectangle((8, 8, 31, 31), fill=255)
    fields = {k: getattr(base, k) for k in GenerationSpec.__dataclass_fields__}
    return EditSpec(**fields, init_image=source, mask=mask_image, strength=strength)


def lora(name: str = "warm_style", *, sha256: str = "0" * 64, weight: float = 0.8,
         model_id: int | None = None, version_id: int | None = None) -> LoraSpec:
    return LoraSpec(path=f"/library/{name}.safetensors", sha256=sha256, name=name, weight=weight,
                    civitai_model_id=model_id, civitai_version_id=version_id)


def _fixture(cls):
    @pytest.fixture
    def fake():
        server = cls()
        yield server
        server.stop()
    return fake


fake_sdnext = _fixture(FakeSdnext)
fake_replicate = _fixture(FakeReplicate)
fake_runware = _fixture(FakeRunware)
fake_gemini = _fixture(FakeGemini)
fake_openai = _fixture(FakeOpenai)
fake_parasail = _fixture(FakeParasail)


def sdnext_provider(fake: FakeSdnext, **options):
    from providers.sdnext import SdnextProvider

    return SdnextProvider(**{**FAST, "base_url": fake.base_url, "poll_interval": 0.02,
                             **options})


def replicate_provider(fake: FakeReplicate, **options):
    from providers.replicate import ReplicateProvider

    return ReplicateProvider(**{**FAST, "base_url": fake.base_url + "/v1",
                                "api_key": fake.api_key, "output_hosts": [],
                                "poll_interval": 0.02, "models": ["owner/model"], **options})


def runware_provider(fake: FakeRunware, **options):
    from providers.runware import RunwareProvider

    return RunwareProvider(**{**FAST, "base_url": fake.base_url + "/v1",
                              "api_key": fake.api_key, "models": ["runware:100@1"], **options})


def gemini_provider(fake: FakeGemini, **options):
    from providers.gemini import GeminiProvider

    return GeminiProvider(**{**FAST, "base_url": fake.base_url + "/v1beta",
                             "api_key": fake.api_key, **options})


def openai_provider(fake: FakeOpenai, **options):
    from providers.openai import OpenaiProvider

    return OpenaiProvider(**{**FAST, "base_url": fake.base_url + "/v1",
                             "api_key": fake.api_key, **options})


def parasail_provider(fake: FakeParasail, **options):
    from providers.parasail import ParasailProvider

    return ParasailProvider(**{**FAST, "base_url": fake.base_url + "/v1",
                               "api_key": fake.api_key, **options})
