"""Runware provider against the fake Runware REST API (task arrays) over loopback HTTP."""

import time
import uuid

import pytest

from providers.base import NullSink, ProviderError

from .remote_helpers import edit_spec, fake_runware, lora, runware_provider, spec  # noqa: F401

PATH = "/v1"


def test_generate_sends_one_image_inference_task_and_decodes_base64(fake_runware):
    images = runware_provider(fake_runware).generate(
        spec("runware:100@1", n=2, width=128, height=64), NullSink())
    assert [i.image.size for i in images] == [(128, 64), (128, 64)]
    assert [i.seed for i in images] == [7, 8]
    tasks = fake_runware.last(PATH).json()
    assert len(tasks) == 1
    task = tasks[0]
    assert uuid.UUID(task["taskUUID"]).version == 4
    assert task | {"taskUUID": "x"} == {
        "taskType": "imageInference", "taskUUID": "x", "positivePrompt": "a red fox",
        "negativePrompt": "blurry", "model": "runware:100@1", "width": 128, "height": 64,
        "steps": 4, "CFGScale": 6.5, "numberResults": 2, "seed": 7,
        "outputType": "base64Data", "outputFormat": "PNG", "deliveryMethod": "sync"}
    assert images[0].info["task_uuid"] == task["taskUUID"] and images[0].info["cost"] == 0.0013


def test_loras_go_as_civitai_air_ids(fake_runware):
    runware_provider(fake_runware).generate(
        spec("runware:100@1", loras=[lora(model_id=102438, version_id=133677, weight=0.7)]),
        NullSink())
    assert fake_runware.last(PATH).json()[0]["lora"] == [
        {"model": "civitai:102438@133677", "weight": 0.7}]


def test_a_lora_without_civitai_ids_fails_naming_it_before_any_call(fake_runware):
    with pytest.raises(ProviderError) as err:
        runware_provider(fake_runware).generate(spec("runware:100@1", loras=[lora("mystery")]),
                                                NullSink())
    assert err.value.code == "lora_not_on_civitai" and "mystery" in err.value.message
    assert fake_runware.count(PATH) == 0


def test_429_with_retry_after_then_success(fake_runware):
    fake_runware.fail_next(status=429, headers={"Retry-After": "1"})
    started = time.monotonic()
    assert len(runware_provider(fake_runware).generate(spec("runware:100@1"), NullSink())) == 1
    assert time.monotonic() - started >= 1.0 and fake_runware.count(PATH) == 2


def test_5xx_then_success(fake_runware):
    fake_runware.fail_next(status=500, message="Provider timed out.")
    assert len(runware_provider(fake_runware).generate(spec("runware:100@1"), NullSink())) == 1
    assert fake_runware.count(PATH) == 2


def test_bad_key_fails_at_once(fake_runware):
    with pytest.raises(ProviderError) as err:
        runware_provider(fake_runware, api_key="wrong").generate(spec("runware:100@1"),
                                                                 NullSink())
    assert err.value.code == "provider_auth" and "Invalid API key" in err.value.message
    assert fake_runware.count(PATH) == 1


def test_timeout_then_success(fake_runware):
    fake_runware.sleep_next(2.0)
    assert len(runware_provider(fake_runware, timeout=0.8).generate(
        spec("runware:100@1"), NullSink())) == 1
    assert fake_runware.count(PATH) == 2


def test_content_moderation_is_content_policy(fake_runware):
    with pytest.raises(ProviderError) as err:
        runware_provider(fake_runware).generate(spec("runware:100@1", prompt="forbidden"),
                                                NullSink())
    assert err.value.code == "content_policy" and "moderation" in err.value.message
    assert fake_runware.count(PATH) == 1


def test_edit_sends_seed_and_mask_images_with_strength(fake_runware):
    out = runware_provider(fake_runware).edit(
        edit_spec(spec("runware:100@1"), mask=True, strength=0.4), NullSink())
    assert len(out) == 1 and out[0].image.size == (64, 64)
    task = fake_runware.last(PATH).json()[0]
    assert task["strength"] == 0.4
    assert task["seedImage"].startswith("data:image/png;base64,")
    assert task["maskImage"].startswith("data:image/png;base64,")


def test_health_pings(fake_runware):
    assert runware_provider(fake_runware).health()["reachable"] is True
    assert fake_runware.last(PATH).json() == [{"taskType": "ping", "ping": True}]
    assert runware_provider(fake_runware, api_key="bad").health()["ok"] is False
