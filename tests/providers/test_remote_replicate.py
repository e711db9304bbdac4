"""Replicate provider against the fake predictions API over loopback HTTP."""

import threading
import time

import pytest

from providers.base import GenerationCancelled, NullSink, ProviderError, UpscaleSpec

from .remote_helpers import (  # noqa: F401
    RecordingSink,
    edit_spec,
    fake_replicate,
    replicate_provider,
    spec,
)

CREATE = "/v1/models/owner/model/predictions"


def test_prefer_wait_answer_with_outputs_is_fetched(fake_replicate):
    images = replicate_provider(fake_replicate).generate(spec("owner/model", n=2), NullSink())
    assert [i.image.size for i in images] == [(64, 64), (64, 64)]
    sent = fake_replicate.last(CREATE)
    assert sent.headers["Prefer"] == "wait=60"
    assert sent.headers["Authorization"] == "Bearer r8_test"
    assert sent.json()["input"] == {"prompt": "a red fox", "negative_prompt": "blurry",
                                    "width": 64, "height": 64, "num_outputs": 2,
                                    "num_inference_steps": 4, "guidance_scale": 6.5, "seed": 7}
    # outputs need the token too
    assert fake_replicate.last("/delivery/").headers["Authorization"] == "Bearer r8_test"
    assert images[0].info["prediction_id"] == "pred0001"


def test_version_ids_use_the_predictions_endpoint(fake_replicate):
    replicate_provider(fake_replicate).generate(spec("owner/model:" + "a" * 64), NullSink())
    assert fake_replicate.last("/v1/predictions").json()["version"] == "owner/model:" + "a" * 64


def test_unfinished_predictions_are_polled_through_urls_get(fake_replicate):
    fake_replicate.polls_needed = 3
    sink = RecordingSink()
    images = replicate_provider(fake_replicate).generate(spec("owner/model"), sink)
    assert len(images) == 1
    assert fake_replicate.count("/v1/predictions/pred0001", method="GET") == 3
    assert sink.steps[-1] == (1, 1, "succeeded")


def test_cancel_posts_urls_cancel(fake_replicate):
    fake_replicate.polls_needed = 1000
    sink = RecordingSink()
    provider = replicate_provider(fake_replicate)
    threading.Timer(0.2, lambda: setattr(sink, "cancel", True)).start()
    with pytest.raises(GenerationCancelled):
        provider.generate(spec("owner/model"), sink)
    assert fake_replicate.count("/v1/predictions/pred0001/cancel", method="POST") == 1
    assert fake_replicate.predictions["pred0001"]["status"] == "canceled"


def test_429_with_replicate_detail_hint_then_success(fake_replicate):
    fake_replicate.fail_next(status=429, body={
        "detail": "Request was throttled. Your rate limit resets in ~1s.", "status": 429})
    started = time.monotonic()
    assert len(replicate_provider(fake_replicate).generate(spec("owner/model"), NullSink())) == 1
    assert time.monotonic() - started >= 1.0 and fake_replicate.count(CREATE) == 2


def test_5xx_then_success(fake_replicate):
    fake_replicate.fail_next(status=502, path=CREATE)
    assert len(replicate_provider(fake_replicate).generate(spec("owner/model"), NullSink())) == 1
    assert fake_replicate.count(CREATE) == 2


def test_bad_token_fails_at_once(fake_replicate):
    with pytest.raises(ProviderError) as err:
        replicate_provider(fake_replicate, api_key="r8_bad").generate(spec("owner/model"),
                                                                      NullSink())
    assert err.value.code == "provider_auth" and "Invalid token." in err.value.message
    assert fake_replicate.count(CREATE) == 1


def test_timeout_then_success(fake_replicate):
    fake_replicate.sleep_next(2.0, path=CREATE)
    provider = replicate_provider(fake_replicate, timeout=0.8, wait_seconds=1)
    # the create call waits at least wait_seconds + 10 s, so it is not the one that times out
    assert provider.generate(spec("owner/model"), NullSink())
    fake_replicate.sleep_next(2.0, path="/delivery/")
    assert provider.generate(spec("owner/model"), NullSink())
    assert fake_replicate.count("/delivery/") == 3  # one timed out, retried


def test_failed_prediction_for_nsfw_is_content_policy(fake_replicate):
    with pytest.raises(ProviderError) as err:
        replicate_provider(fake_replicate).generate(spec("owner/model", prompt="forbidden"),
                                                    NullSink())
    assert err.value.code == "content_policy" and "NSFW content detected" in err.value.message


def test_output_urls_on_other_hosts_are_refused(fake_replicate):
    fake_replicate.fail_next(status=201, path=CREATE, body={
        "id": "p1", "status": "succeeded", "output": ["http://169.254.169.254/latest"],
        "urls": {}})
    with pytest.raises(ProviderError) as err:
        replicate_provider(fake_replicate).generate(spec("owner/model"), NullSink())
    assert err.value.code == "url_not_allowed"


def test_edit_and_upscale(fake_replicate):
    provider = replicate_provider(fake_replicate)
    out = provider.edit(edit_spec(spec("owner/model"), mask=True, strength=0.3), NullSink())
    assert len(out) == 1
    sent = fake_replicate.last(CREATE).json()["input"]
    assert sent["prompt_strength"] == 0.3 and sent["image"].startswith("data:image/png;base64,")
    assert sent["mask"].startswith("data:image/png;base64,")
    from PIL import Image

    up = provider.upscale(UpscaleSpec(image=Image.new("RGB", (20, 10)), factor=4), NullSink())
    assert up.image.size == (80, 40)
    assert fake_replicate.last("/v1/models/nightmareai/real-esrgan/predictions").json()[
        "input"]["scale"] == 4
    # a named Replicate upscaler wins over the default; the profile's model is never used
    from providers.base import ModelSpec

    provider.upscale(UpscaleSpec(image=Image.new("RGB", (8, 8)), factor=2,
                                 model=ModelSpec("replicate", "owner/model"),
                                 upscaler="someone/esrgan:" + "b" * 64), NullSink())
    assert fake_replicate.last("/v1/predictions").json()["version"] == "someone/esrgan:" + "b" * 64
