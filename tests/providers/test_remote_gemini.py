"""Gemini image provider against the fake Generative Language API over loopback HTTP."""

import base64
import io
import time

import pytest

from providers.base import NullSink, ProviderError
from providers.gemini import aspect_ratio

from .fakes.gemini import rate_limit_body
from .remote_helpers import edit_spec, fake_gemini, gemini_provider, spec  # noqa: F401

PATH = "/v1beta/models/gemini-2.5-flash-image:generateContent"


def test_generate_decodes_inline_images_one_call_per_image(fake_gemini):
    images = gemini_provider(fake_gemini).generate(
        spec("gemini-2.5-flash-image", n=2, width=1216, height=832), NullSink())
    assert len(images) == 2 and fake_gemini.count(PATH) == 2
    assert images[0].image.size == (32 * 3, 32 * 2)  # aspect 3:2 chosen for 1216x832
    sent = fake_gemini.last(PATH)
    assert sent.headers["X-Goog-Api-Key"] == "AIza-test"
    body = sent.json()
    assert body["contents"][0]["parts"] == [{"text": "a red fox"}]
    assert body["generationConfig"] == {"responseModalities": ["TEXT", "IMAGE"],
                                        "imageConfig": {"aspectRatio": "3:2"}}
    assert images[0].info["response_id"] == "resp-1"


def test_aspect_ratio_picks_the_closest_supported():
    assert aspect_ratio(512, 512) == "1:1"
    assert aspect_ratio(576, 1024) == "9:16"
    assert aspect_ratio(2100, 900) == "21:9"


def test_429_with_retry_info_delay_is_waited(fake_gemini):
    fake_gemini.fail_next(status=429, body=rate_limit_body("1s"))
    started = time.monotonic()
    assert len(gemini_provider(fake_gemini, backoff=0.01).generate(spec(), NullSink())) == 1
    assert time.monotonic() - started >= 1.0 and fake_gemini.count(PATH) == 2


def test_5xx_then_success(fake_gemini):
    fake_gemini.fail_next(status=503, message="The model is overloaded.")
    assert len(gemini_provider(fake_gemini).generate(spec(), NullSink())) == 1
    assert fake_gemini.count(PATH) == 2


def test_bad_key_400_api_key_invalid_fails_at_once(fake_gemini):
    with pytest.raises(ProviderError) as err:
        gemini_provider(fake_gemini, api_key="nope").generate(spec(), NullSink())
    assert err.value.code == "provider_auth"
    assert "API key not valid" in err.value.message and fake_gemini.count(PATH) == 1


def test_timeout_then_success(fake_gemini):
    fake_gemini.sleep_next(2.0)
    assert len(gemini_provider(fake_gemini, timeout=0.8).generate(spec(), NullSink())) == 1
    assert fake_gemini.count(PATH) == 2


def test_a_retry_hint_longer_than_allowed_fails_retryable_at_once(fake_gemini):
    fake_gemini.fail_next(status=429, body=rate_limit_body("120s"))
    with pytest.raises(ProviderError) as err:
        gemini_provider(fake_gemini).generate(spec(), NullSink())
    assert err.value.code == "provider_rate_limited" and err.value.retryable
    assert "120" in err.value.message and fake_gemini.count(PATH) == 1


def test_safety_block_is_content_policy(fake_gemini):
    with pytest.raises(ProviderError) as err:
        gemini_provider(fake_gemini).generate(spec(prompt="forbidden art"), NullSink())
    assert err.value.code == "content_policy" and "SAFETY" in err.value.message


def test_text_only_answer_fails_with_the_models_text(fake_gemini):
    fake_gemini.fail_next(status=200, body={"candidates": [{"content": {"parts": [
        {"text": "I can only describe it."}]}, "finishReason": "STOP"}]})
    with pytest.raises(ProviderError) as err:
        gemini_provider(fake_gemini).generate(spec(), NullSink())
    assert err.value.code == "provider_failed" and "describe it" in err.value.message


def test_edit_sends_the_source_image_inline(fake_gemini):
    from PIL import Image

    out = gemini_provider(fake_gemini).edit(edit_spec(spec()), NullSink())
    assert len(out) == 1
    part = fake_gemini.last(PATH).json()["contents"][0]["parts"][1]["inlineData"]
    assert part["mimeType"] == "image/png"
    sent = Image.open(io.BytesIO(base64.b64decode(part["data"])))
    assert sent.size == (64, 64) and sent.getpixel((0, 0)) == (10, 120, 200)


def test_models_lists_image_models_and_health(fake_gemini):
    provider = gemini_provider(fake_gemini)
    assert [m["id"] for m in provider.models()] == ["gemini-2.5-flash-image"]
    assert provider.health()["reachable"] is True
