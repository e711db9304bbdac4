"""SD.Next / A1111 provider against the fake SD.Next API over loopback HTTP."""

import threading
import time

import pytest

from providers.base import GenerationCancelled, NullSink, ProviderError, UpscaleSpec

from .remote_helpers import (  # noqa: F401
    RecordingSink,
    edit_spec,
    fake_sdnext,
    lora,
    sdnext_provider,
    spec,
)

TXT2IMG = "/sdapi/v1/txt2img"


def test_txt2img_payload_images_and_info(fake_sdnext):
    images = sdnext_provider(fake_sdnext).generate(
        spec("v1-5-pruned-emaonly.safetensors [6ce0161689]", n=2, width=96, height=64),
        NullSink())
    assert [(i.image.size, i.seed) for i in images] == [((96, 64), 7), ((96, 64), 8)]
    assert images[0].info["sampler"] == "Euler a"
    assert images[0].info["model_hash"] == "6ce0161689"
    body = fake_sdnext.last(TXT2IMG).json()
    assert body["batch_size"] == 2 and body["cfg_scale"] == 6.5 and body["seed"] == 7
    assert body["override_settings"] == {
        "sd_model_checkpoint": "v1-5-pruned-emaonly.safetensors [6ce0161689]"}


def test_progress_is_polled_into_the_sink_while_the_post_runs(fake_sdnext):
    fake_sdnext.step_delay = 0.05
    sink = RecordingSink()
    sdnext_provider(fake_sdnext).generate(spec(steps=12), sink)
    steps = [s for s, _total, _m in sink.steps]
    assert steps and steps == sorted(steps) and all(t == 12 for _s, t, _m in sink.steps)
    assert 1 <= steps[0] < 12 and len(steps) >= 3


def test_loras_become_prompt_tags_by_remote_name_alias_or_hash(fake_sdnext):
    provider = sdnext_provider(fake_sdnext)
    provider.generate(spec(loras=[lora("warmstyle", weight=0.8),
                                  lora("renamed-locally", sha256="ab" * 32, weight=1.2)]),
                      NullSink())
    prompt = fake_sdnext.last(TXT2IMG).json()["prompt"]
    assert prompt == "a red fox <lora:warm_style:0.8> <lora:hashed:1.2>"
    assert fake_sdnext.unknown_loras == []


def test_a_lora_the_server_lacks_fails_before_generating(fake_sdnext):
    with pytest.raises(ProviderError) as err:
        sdnext_provider(fake_sdnext).generate(spec(loras=[lora("not_there")]), NullSink())
    assert err.value.code == "lora_not_on_server" and "not_there" in err.value.message
    assert fake_sdnext.count(TXT2IMG) == 0


def test_cancel_calls_interrupt(fake_sdnext):
    fake_sdnext.step_delay = 0.05
    sink = RecordingSink()
    threading.Timer(0.2, lambda: setattr(sink, "cancel", True)).start()
    started = time.monotonic()
    with pytest.raises(GenerationCancelled):
        sdnext_provider(fake_sdnext).generate(spec(steps=200), sink)
    assert fake_sdnext.count("/sdapi/v1/interrupt") == 1
    assert time.monotonic() - started < 5  # 200 steps would take 10 s


def test_img2img_and_inpaint(fake_sdnext):
    provider = sdnext_provider(fake_sdnext)
    out = provider.edit(edit_spec(spec(), strength=0.35), NullSink())
    assert len(out) == 1 and out[0].image.size == (64, 64)
    body = fake_sdnext.last("/sdapi/v1/img2img").json()
    assert body["denoising_strength"] == 0.35 and len(body["init_images"]) == 1
    assert "mask" not in body
    provider.edit(edit_spec(spec(), mask=True), NullSink())
    assert fake_sdnext.last("/sdapi/v1/img2img").json()["mask"]


def test_upscale_through_extra_single_image(fake_sdnext):
    from PIL import Image

    out = sdnext_provider(fake_sdnext).upscale(
        UpscaleSpec(image=Image.new("RGB", (30, 20)), factor=2), NullSink())
    assert out.image.size == (60, 40) and out.info["upscaler"] == "R-ESRGAN 4x+"
    body = fake_sdnext.last("/sdapi/v1/extra-single-image").json()
    assert body["upscaling_resize"] == 2 and body["upscaler_1"] == "R-ESRGAN 4x+"


def test_busy_proxy_429_with_retry_after_then_success(fake_sdnext):
    fake_sdnext.fail_next(status=429, path=TXT2IMG, headers={"Retry-After": "1"})
    started = time.monotonic()
    assert sdnext_provider(fake_sdnext).generate(spec(), NullSink())
    assert time.monotonic() - started >= 1.0 and fake_sdnext.count(TXT2IMG) == 2


def test_5xx_then_success(fake_sdnext):
    fake_sdnext.fail_next(status=500, path=TXT2IMG, message="CUDA out of memory")
    assert sdnext_provider(fake_sdnext).generate(spec(), NullSink())
    assert fake_sdnext.count(TXT2IMG) == 2


def test_basic_auth(fake_sdnext):
    fake_sdnext.username = "painter"
    with pytest.raises(ProviderError) as err:
        sdnext_provider(fake_sdnext, username="painter", password="wrong").generate(
            spec(), NullSink())
    assert err.value.code == "provider_auth" and "Not authenticated" in err.value.message
    assert fake_sdnext.count(TXT2IMG) == 1
    assert sdnext_provider(fake_sdnext, username="painter", password="secret").generate(
        spec(), NullSink())


def test_timeout_then_success(fake_sdnext):
    fake_sdnext.sleep_next(2.0, path=TXT2IMG)
    assert sdnext_provider(fake_sdnext, timeout=0.8).generate(spec(), NullSink())
    assert fake_sdnext.count(TXT2IMG) == 2


def test_a1111_errors_carry_their_detail(fake_sdnext):
    fake_sdnext.fail_next(status=404, path=TXT2IMG, message="Sampler not found")
    with pytest.raises(ProviderError) as err:
        sdnext_provider(fake_sdnext).generate(spec(options={"sampler_name": "Nope"}), NullSink())
    assert err.value.code == "provider_bad_request" and "Sampler not found" in err.value.message
    assert fake_sdnext.count(TXT2IMG) == 1


def test_models_and_health(fake_sdnext):
    provider = sdnext_provider(fake_sdnext)
    assert provider.models()[0]["id"] == "v1-5-pruned-emaonly.safetensors [6ce0161689]"
    assert provider.health()["reachable"] is True
    unconfigured = sdnext_provider(fake_sdnext, base_url="")
    assert unconfigured.health() == {"configured": False, "reachable": False, "ok": False,
                                     "latency_ms": None, "detail": "Set SDNEXT_BASE_URL."}
