"""Parasail: an OpenAI-compatible chat provider used to rewrite prompts (no image endpoint).

Protocol (docs/protocols.md#parasail): ``POST {base}/chat/completions`` (base
``https://api.parasail.io/v1``) with ``Authorization: Bearer``; body ``{"model", "messages":
[{"role","content"}], "max_tokens", "temperature"}``; answer
``{"choices":[{"message":{"content"}, "finish_reason"}]}``; ``GET /models`` lists models.
Errors are presumably OpenAI-style ``{"error":{"message"}}`` (UNVERIFIED).
"""

from __future__ import annotations

from typing import Any

from .base import Capabilities, GeneratedImage, GenerationSpec, ProgressSink, ProviderError
from .http import looks_like_policy
from .remote import RemoteProvider

SYSTEM_PROMPT = (
    "You rewrite prompts for a text-to-image diffusion model. Keep the subject and every "
    "<lora:...> tag exactly; add concrete details of composition, lighting, style and medium; "
    "answer with the prompt only, one paragraph, under 80 words.")


class ParasailProvider(RemoteProvider):
    """Options: ``api_key`` (PARASAIL_API_KEY), ``base_url``, ``chat_model``, and the common
    remote options. No image capabilities; :meth:`enhance_prompt` only."""

    required = {"api_key": "PARASAIL_API_KEY"}

    name = "parasail"
    pipeline_types = ()
    capabilities = Capabilities(txt2img=False, negative_prompt=False, seed=False,
                                guidance=False, steps=False, max_batch=0, prompt_enhance=True)
    extra_options = {"chat_model": "parasail-llama-33-70b-fp8"}
    health_call = ("GET", "/models")

    def generate(self, spec: GenerationSpec, sink: ProgressSink) -> list[GeneratedImage]:
        """Raises: ProviderError ``unsupported`` (Parasail documents no image endpoint)."""
        raise ProviderError("unsupported", "Parasail has no image generation; use it to "
                                           "rewrite prompts.")

    def enhance_prompt(self, prompt: str, *, instructions: str = "") -> str:
        """Rewrite ``prompt`` with ``chat_model`` through ``/chat/completions``.

        Raises:
            ProviderError: ``content_policy`` when the answer was filtered, ``provider_failed``
                on an empty answer, HTTP failures (see ``providers.http``).
        """
        body = self.client.json("POST", "/chat/completions", json={
            "model": self.options["chat_model"], "temperature": 0.7, "max_tokens": 300,
            "messages": [{"role": "system", "content": instructions or SYSTEM_PROMPT},
                         {"role": "user", "content": prompt}]})
        choices = body.get("choices") if isinstance(body, dict) else None
        if not choices:
            raise ProviderError("provider_failed", "parasail: the answer has no choices.")
        choice = choices[0]
        text = ((choice.get("message") or {}).get("content") or "").strip()
        if choice.get("finish_reason") == "content_filter" or (not text and looks_like_policy(
                str(choice.get("finish_reason")))):
            raise ProviderError("content_policy", "parasail: the prompt was filtered.")
        if not text:
            raise ProviderError("provider_failed", "parasail: empty answer.")
        return text.strip('"').strip()

    def models(self) -> list[dict[str, Any]]:
        """Chat models from ``GET /models``."""
        body = self.client.json("GET", "/models", retries=0)
        items = body.get("data", []) if isinstance(body, dict) else []
        return [{"id": m["id"], "name": m["id"], "pipeline_type": "chat"}
                for m in items if isinstance(m, dict) and m.get("id")]
