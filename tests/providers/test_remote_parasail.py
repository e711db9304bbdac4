"""Parasail (prompt enhancement over OpenAI-compatible chat) against its fake."""

import time

import pytest

from providers.base import NullSink, ProviderError

from .remote_helpers import fake_parasail, parasail_provider, spec  # noqa: F401

PATH = "/v1/chat/completions"


def test_enhance_prompt_sends_a_chat_completion_and_returns_the_text(fake_parasail):
    text = parasail_provider(fake_parasail).enhance_prompt("a fox <lora:warm:0.8>")
    assert text == "<enhanced> a fox <lora:warm:0.8>, golden hour light"
    body = fake_parasail.last(PATH).json()
    assert body["model"] == "parasail-llama-33-70b-fp8"
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert fake_parasail.last(PATH).headers["Authorization"] == "Bearer ps-test"


def test_429_then_success(fake_parasail):
    fake_parasail.fail_next(status=429, headers={"Retry-After": "1"})
    started = time.monotonic()
    assert parasail_provider(fake_parasail).enhance_prompt("a fox").startswith("<enhanced>")
    assert time.monotonic() - started >= 1.0


def test_5xx_then_success(fake_parasail):
    fake_parasail.fail_next(status=502)
    assert parasail_provider(fake_parasail).enhance_prompt("a fox")
    assert fake_parasail.count(PATH) == 2


def test_bad_key(fake_parasail):
    with pytest.raises(ProviderError) as err:
        parasail_provider(fake_parasail, api_key="bad").enhance_prompt("a fox")
    assert err.value.code == "provider_auth" and "Invalid API key" in err.value.message
    assert fake_parasail.count(PATH) == 1


def test_timeout_then_success(fake_parasail):
    fake_parasail.sleep_next(2.0)
    assert parasail_provider(fake_parasail, timeout=0.8).enhance_prompt("a fox")
    assert fake_parasail.count(PATH) == 2


def test_content_filter(fake_parasail):
    with pytest.raises(ProviderError) as err:
        parasail_provider(fake_parasail).enhance_prompt("something forbidden")
    assert err.value.code == "content_policy"


def test_it_has_no_image_generation(fake_parasail):
    provider = parasail_provider(fake_parasail)
    assert not provider.capabilities.txt2img and provider.capabilities.prompt_enhance
    with pytest.raises(ProviderError) as err:
        provider.generate(spec(), NullSink())
    assert err.value.code == "unsupported"
    assert provider.models()[0]["id"] == "parasail-llama-33-70b-fp8"
