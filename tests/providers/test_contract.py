"""The provider contract, checked on every provider: local (fake, diffusers_local) and remote
(against their fake servers over loopback HTTP).

Each case builds a ready provider, the model id it serves and a broken variant whose call must
fail with a :class:`ProviderError`. Edit and upscale are called only when declared; otherwise
they must refuse with ``unsupported``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import settings

from providers.base import (
    Capabilities,
    GeneratedImage,
    ModelSpec,
    NullSink,
    ProviderError,
    ProviderUnavailable,
    UpscaleSpec,
)

from . import remote_helpers as rh
from .fakes.gemini import FakeGemini
from .fakes.openai import FakeOpenai
from .fakes.parasail import FakeParasail
from .fakes.replicate import FakeReplicate
from .fakes.runware import FakeRunware
from .fakes.sdnext import FakeSdnext


@dataclass
class Harness:
    provider: Any
    model: str
    pipeline_type: str
    broken: Callable[[], None]  # a call that must raise ProviderError
    upscale_model: Any = None  # ModelSpec for upscale() where the provider needs an upscale model


def _fake(request) -> Harness:
    from providers.fake import FakeProvider

    provider = FakeProvider()
    return Harness(provider, "fake", "fake", broken=lambda: provider.generate(
        rh.spec("fake", pipeline_type="fake", prompt="<fail>"), NullSink()))


def _diffusers_local(request) -> Harness:
    from providers.diffusers_local import DiffusersProvider

    assets = request.getfixturevalue("demo_assets")
    upscaler = request.getfixturevalue("demo_upscale_model")
    provider = DiffusersProvider(device="cpu", num_threads=1)
    return Harness(provider, str(assets["model"]), "sd",
                   broken=lambda: provider.generate(
                       rh.spec("/nowhere/no-model", steps=2), NullSink()),
                   upscale_model=ModelSpec(pipeline_type="sd-upscale", model=str(upscaler),
                                           options={"steps": 2}))


def _remote(fake_cls, build, model, pipeline_type):
    def make(request) -> Harness:
        fake = fake_cls()
        request.addfinalizer(fake.stop)
        provider = build(fake)
        bad = build(fake, api_key="wrong-key") if fake_cls is not FakeSdnext else None
        if bad is None:
            fake.username = "painter"
            provider = build(fake, username="painter", password=fake.password)
            bad = build(fake, username="painter", password="wrong")
        if not provider.capabilities.txt2img:  # text-only (Parasail): its one call
            return Harness(provider, model, pipeline_type,
                           broken=lambda: bad.enhance_prompt("a fox"))
        return Harness(provider, model, pipeline_type,
                       broken=lambda: bad.generate(rh.spec(model, pipeline_type=pipeline_type),
                                                   NullSink()))
    return make


CASES = {
    "fake": ("providers.fake.FakeProvider", _fake),
    "diffusers_local": ("providers.diffusers_local.DiffusersProvider", _diffusers_local),
    "sdnext": ("providers.sdnext.SdnextProvider",
               _remote(FakeSdnext, rh.sdnext_provider, "", "sd")),
    "replicate": ("providers.replicate.ReplicateProvider",
                  _remote(FakeReplicate, rh.replicate_provider, "owner/model", "replicate")),
    "runware": ("providers.runware.RunwareProvider",
                _remote(FakeRunware, rh.runware_provider, "runware:100@1", "runware")),
    "gemini": ("providers.gemini.GeminiProvider",
               _remote(FakeGemini, rh.gemini_provider, "gemini-2.5-flash-image", "gemini")),
    "openai": ("providers.openai.OpenaiProvider",
               _remote(FakeOpenai, rh.openai_provider, "dall-e-2", "openai")),
    "parasail": ("providers.parasail.ParasailProvider",
                 _remote(FakeParasail, rh.parasail_provider, "", "")),
}


@pytest.fixture(params=sorted(CASES))
def harness(request) -> Harness:
    return CASES[request.param][1](request)


@pytest.fixture(params=sorted(set(CASES) - {"fake", "diffusers_local"}))
def remote_harness(request) -> Harness:
    return CASES[request.param][1](request)


def test_every_configured_backend_has_a_contract_case():
    backends = {config["BACKEND"] for config in settings.IMAGE_PROVIDERS.values()}
    assert backends <= {backend for backend, _make in CASES.values()}


def test_capabilities_are_declared(harness):
    provider = harness.provider
    caps = provider.capabilities
    assert isinstance(caps, Capabilities)
    assert provider.name and isinstance(provider.pipeline_types, tuple)
    assert all(isinstance(t, str) and t for t in provider.pipeline_types)
    if caps.txt2img:
        assert harness.pipeline_type in provider.pipeline_types
        assert caps.max_width >= 64 and caps.max_height >= 64 and caps.max_batch >= 1
    assert caps.inpaint <= caps.img2img or not caps.inpaint  # inpaint implies an edit path
    for kind in ("txt2img", "img2img", "inpaint", "upscale", "loras"):
        assert provider.supports(kind) is getattr(caps, kind)
    assert provider.is_configured() is True


def test_generate_returns_n_images_of_the_asked_size_and_seeds(harness):
    provider = harness.provider
    spec = rh.spec(harness.model, pipeline_type=harness.pipeline_type, n=2, seed=11, steps=2)
    if not provider.capabilities.txt2img:
        with pytest.raises(ProviderError) as err:
            provider.generate(spec, NullSink())
        assert err.value.code == "unsupported"
        return
    images = provider.generate(spec, NullSink())
    assert len(images) == 2 and all(isinstance(i, GeneratedImage) for i in images)
    assert all(isinstance(i.info, dict) for i in images)
    if provider.capabilities.exact_size:
        assert [i.image.size for i in images] == [(64, 64), (64, 64)]
    else:
        assert all(i.image.width > 0 and i.image.height > 0 for i in images)
    if provider.capabilities.seed:
        assert [i.seed for i in images] == [11, 12]


def test_failures_are_provider_errors_with_a_message(harness):
    with pytest.raises(ProviderError) as err:
        harness.broken()
    assert err.value.code and err.value.message and not err.value.retryable


def test_edit_only_when_declared(harness):
    provider = harness.provider
    base = rh.spec(harness.model, pipeline_type=harness.pipeline_type, steps=2)
    if not provider.capabilities.img2img:
        with pytest.raises(ProviderError) as err:
            provider.edit(rh.edit_spec(base), NullSink())
        assert err.value.code == "unsupported"
        return
    out = provider.edit(rh.edit_spec(base, strength=0.5), NullSink())
    assert len(out) == 1
    if provider.capabilities.exact_size:
        assert out[0].image.size == (64, 64)
    if provider.capabilities.inpaint:
        assert len(provider.edit(rh.edit_spec(base, mask=True), NullSink())) == 1


def test_upscale_only_when_declared(harness):
    from PIL import Image

    provider = harness.provider
    source = Image.new("RGB", (32, 16), (200, 100, 50))
    if not provider.capabilities.upscale:
        with pytest.raises(ProviderError) as err:
            provider.upscale(UpscaleSpec(image=source, factor=2), NullSink())
        assert err.value.code == "unsupported"
        return
    spec = UpscaleSpec(image=source, factor=2, model=harness.upscale_model)
    out = provider.upscale(spec, NullSink())
    assert out.image.size == (64, 32)


def test_health_and_models(harness):
    health = harness.provider.health()
    assert {"configured", "reachable", "detail"} <= set(health)
    assert health["configured"] is True and health["reachable"] is True
    models = harness.provider.models()
    assert isinstance(models, list)
    assert all({"id", "pipeline_type"} <= set(m) for m in models)


def test_remote_providers_without_settings_are_unavailable(remote_harness):
    provider = type(remote_harness.provider)(**{**rh.FAST, "base_url": "", "api_key": ""})
    assert provider.is_configured() is False
    with pytest.raises(ProviderUnavailable):
        if provider.capabilities.txt2img:
            provider.generate(rh.spec(remote_harness.model), NullSink())
        else:
            provider.enhance_prompt("a fox")
    assert provider.health()["configured"] is False
