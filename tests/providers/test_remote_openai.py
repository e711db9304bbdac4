"""OpenAI Images provider against the fake Images API over loopback HTTP."""

import time

import pytest

from providers.base import NullSink, ProviderError, ProviderUnavailable

from .remote_helpers import edit_spec, fake_openai, openai_provider, spec  # noqa: F401


def test_generate_sends_the_documented_body_and_decodes_b64_json(fake_openai):
    provider = openai_provider(fake_openai)
    images = provider.generate(spec("gpt-image-1", n=2, width=1536, height=1024), NullSink())
    assert len(images) == 2
    assert images[0].image.size == (1536 // 16, 1024 // 16)  # the fake scales sizes down
    sent = fake_openai.last("/v1/images/generations")
    assert sent.headers["Authorization"] == "Bearer sk-test"
    assert sent.json() == {"prompt": "a red fox", "model": "gpt-image-1", "n": 2,
                           "size": "1536x1024"}
    assert images[0].info["model"] == "gpt-image-1" and images[0].info["size"] == "1536x1024"


def test_dalle_asks_b64_json_and_a_size_of_its_own_list(fake_openai):
    provider = openai_provider(fake_openai)
    provider.generate(spec("dall-e-2", width=500, height=500), NullSink())
    body = fake_openai.last("/v1/images/generations").json()
    assert body["response_format"] == "b64_json" and body["size"] == "512x512"


def test_429_with_retry_after_is_waited_then_succeeds(fake_openai):
    fake_openai.fail_next(status=429, headers={"Retry-After": "1"},
                          message="Rate limit reached for images per minute.")
    started = time.monotonic()
    images = openai_provider(fake_openai).generate(spec("gpt-image-1"), NullSink())
    assert len(images) == 1
    assert time.monotonic() - started >= 1.0
    assert fake_openai.count("/v1/images/generations") == 2


def test_retry_after_ms_is_honoured(fake_openai):
    fake_openai.fail_next(status=429, headers={"retry-after-ms": "400"})
    started = time.monotonic()
    openai_provider(fake_openai, backoff=5.0).generate(spec("gpt-image-1"), NullSink())
    assert 0.4 <= time.monotonic() - started < 4.0


def test_5xx_then_success(fake_openai):
    fake_openai.fail_next(status=503, count=2, message="The server is overloaded.")
    assert len(openai_provider(fake_openai).generate(spec("gpt-image-1"), NullSink())) == 1
    assert fake_openai.count("/v1/images/generations") == 3


def test_5xx_every_time_fails_retryable_with_the_message(fake_openai):
    fake_openai.fail_next(status=500, count=10, message="Internal meltdown.")
    with pytest.raises(ProviderError) as err:
        openai_provider(fake_openai).generate(spec("gpt-image-1"), NullSink())
    assert err.value.code == "provider_unavailable" and err.value.retryable
    assert "Internal meltdown." in err.value.message
    assert fake_openai.count("/v1/images/generations") == 3  # 1 + max_retries


def test_bad_key_fails_at_once_with_the_providers_message(fake_openai):
    with pytest.raises(ProviderError) as err:
        openai_provider(fake_openai, api_key="sk-bad").generate(spec("gpt-image-1"), NullSink())
    assert err.value.code == "provider_auth" and not err.value.retryable
    assert "Incorrect API key provided" in err.value.message
    assert fake_openai.count("/v1/images/generations") == 1


def test_insufficient_quota_429_is_permanent(fake_openai):
    fake_openai.fail_next(status=429, body={"error": {
        "message": "You exceeded your current quota.", "type": "insufficient_quota",
        "code": "insufficient_quota"}})
    with pytest.raises(ProviderError) as err:
        openai_provider(fake_openai).generate(spec("gpt-image-1"), NullSink())
    assert err.value.code == "provider_quota" and "current quota" in err.value.message
    assert fake_openai.count("/v1/images/generations") == 1


def test_timeout_is_retried_then_succeeds(fake_openai):
    fake_openai.sleep_next(2.0)
    images = openai_provider(fake_openai, timeout=0.8).generate(spec("gpt-image-1"), NullSink())
    assert len(images) == 1 and fake_openai.count("/v1/images/generations") == 2


def test_timeouts_every_time_fail_retryable(fake_openai):
    fake_openai.sleep_next(1.0, count=5)
    started = time.monotonic()
    with pytest.raises(ProviderError) as err:
        openai_provider(fake_openai, timeout=0.2, max_retries=1).generate(
            spec("gpt-image-1"), NullSink())
    assert err.value.code == "provider_timeout" and err.value.retryable
    assert time.monotonic() - started < 4.0


def test_content_policy_fails_at_once_with_the_providers_message(fake_openai):
    with pytest.raises(ProviderError) as err:
        openai_provider(fake_openai).generate(spec("gpt-image-1", prompt="a forbidden thing"),
                                              NullSink())
    assert err.value.code == "content_policy" and "safety system" in err.value.message
    assert fake_openai.count("/v1/images/generations") == 1


def test_edit_sends_multipart_with_a_transparent_mask(fake_openai):
    import io

    from PIL import Image

    provider = openai_provider(fake_openai)
    out = provider.edit(edit_spec(spec("gpt-image-1", width=1024, height=1024), mask=True),
                        NullSink())
    assert len(out) == 1 and out[0].image.size == (64, 64)
    sent = fake_openai.last("/v1/images/edits")
    assert sent.headers["Content-Type"].startswith("multipart/form-data")
    boundary = sent.headers["Content-Type"].split("boundary=")[1].encode()
    mask_part = [p for p in sent.body.split(b"--" + boundary) if b'name="mask"' in p][0]
    mask = Image.open(io.BytesIO(mask_part.split(b"\r\n\r\n", 1)[1].rstrip(b"\r\n")))
    # the painted area (white in our mask) is transparent; the rest is opaque
    assert mask.mode == "RGBA" and mask.getpixel((16, 16))[3] == 0
    assert mask.getpixel((2, 2))[3] == 255


def test_missing_key_is_unavailable_and_health_says_so(fake_openai):
    provider = openai_provider(fake_openai, api_key="")
    assert provider.is_configured() is False
    with pytest.raises(ProviderUnavailable, match="OPENAI_API_KEY"):
        provider.generate(spec("gpt-image-1"), NullSink())
    assert provider.health()["configured"] is False


def test_health_and_models(fake_openai):
    provider = openai_provider(fake_openai)
    health = provider.health()
    assert health["configured"] and health["reachable"] and health["latency_ms"] >= 0
    assert [m["id"] for m in provider.models()] == ["gpt-image-1", "dall-e-3"]
    fake_openai.stop()
    assert provider.health()["reachable"] is False
