"""Gemini native image models ("Nano Banana") through the Generative Language API.

Protocol (docs/protocols.md#gemini, from ai.google.dev docs):

- ``POST {base}/models/{model}:generateContent`` (base ``…/v1beta``), header
  ``x-goog-api-key``; body ``{"contents":[{"role":"user","parts":[{"text"},
  {"inlineData":{"mimeType","data"}}]}], "generationConfig":{"responseModalities":
  ["TEXT","IMAGE"], "imageConfig":{"aspectRatio": "1:1"|"3:2"|…}}}``;
- images come back base64 inline in ``candidates[].content.parts[].inlineData``;
- a refusal is an empty ``candidates``, a ``promptFeedback.blockReason`` or a ``finishReason``
  other than ``STOP`` (exact fields for image models are UNVERIFIED);
- errors ``{"error":{"code","message","status","details"}}``; a bad key is 400
  ``API_KEY_INVALID``; a 429 may carry ``RetryInfo.retryDelay``.

The model picks the pixel size from the aspect ratio, so ``exact_size`` is False; one call
makes one image, so ``n`` images are ``n`` calls.
"""

from __future__ import annotations

from typing import Any

from .base import (
    Capabilities,
    EditSpec,
    GeneratedImage,
    GenerationCancelled,
    GenerationSpec,
    ProgressSink,
    ProviderError,
)
from .remote import RemoteProvider, decode_image, image_to_b64

ASPECT_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
DEFAULT_MODEL = "gemini-2.5-flash-image"


def aspect_ratio(width: int, height: int) -> str:
    """The supported aspect ratio closest to ``width``/``height`` (pixels)."""
    target = width / height

    def ratio(value: str) -> float:
        a, b = value.split(":")
        return int(a) / int(b)

    return min(ASPECT_RATIOS, key=lambda value: abs(ratio(value) - target))


class GeminiProvider(RemoteProvider):
    """Options: ``api_key`` (GEMINI_API_KEY), ``base_url``, and the common remote options."""

    required = {"api_key": "GEMINI_API_KEY"}

    name = "gemini"
    pipeline_types = ("gemini",)
    capabilities = Capabilities(img2img=True, inpaint=False, negative_prompt=False, seed=False,
                                guidance=False, steps=False, max_width=4096, max_height=4096,
                                max_batch=4, exact_size=False)
    health_call = ("GET", "/models?pageSize=1")

    def auth_headers(self) -> dict[str, str]:
        return {"x-goog-api-key": self.api_key}

    def _call(self, model: str, parts: list[dict], spec: GenerationSpec,
              sink: ProgressSink) -> list[GeneratedImage]:
        body = {"contents": [{"role": "user", "parts": parts}],
                "generationConfig": {"responseModalities": ["TEXT", "IMAGE"],
                                     "imageConfig": {"aspectRatio":
                                                     aspect_ratio(spec.width, spec.height)}}}
        out: list[GeneratedImage] = []
        for i in range(spec.n):
            if sink.should_cancel():
                raise GenerationCancelled()
            answer = self.client.json("POST", f"/models/{model}:generateContent", json=body,
                                      sink=sink)
            out.extend(self._images(answer, model, spec.seed + i))
            sink.step(i + 1, spec.n)
        return out

    def _images(self, answer: Any, model: str, seed: int) -> list[GeneratedImage]:
        if not isinstance(answer, dict):
            raise ProviderError("provider_bad_response", "Gemini answered without an object.")
        block = (answer.get("promptFeedback") or {}).get("blockReason")
        if block:
            raise ProviderError("content_policy", f"gemini: the prompt was blocked ({block}).")
        candidates = answer.get("candidates") or []
        texts: list[str] = []
        for candidate in candidates:
            parts = (candidate.get("content") or {}).get("parts") or []
            for part in parts:
                inline = part.get("inlineData") or part.get("inline_data")
                if inline and inline.get("data"):
                    return [GeneratedImage(
                        image=decode_image(inline["data"], provider=self.name), seed=seed,
                        info={"provider": self.name,
                              "model": answer.get("modelVersion") or model,
                              "response_id": answer.get("responseId"), "text": " ".join(texts)})]
                if part.get("text"):
                    texts.append(part["text"])
            reason = candidate.get("finishReason")
            if reason and reason != "STOP":
                raise ProviderError("content_policy" if "SAFETY" in reason or "PROHIBITED"
                                    in reason else "provider_failed",
                                    f"gemini: no image (finishReason {reason}).")
        raise ProviderError("provider_failed", "gemini: the model answered without an image"
                            + (f": {' '.join(texts)[:300]}" if texts else "."))

    def generate(self, spec: GenerationSpec, sink: ProgressSink) -> list[GeneratedImage]:
        """txt2img: the prompt as text, ``spec.n`` calls.

        Raises:
            ProviderError: ``content_policy`` on a block, ``provider_failed`` on a text-only
                answer, HTTP failures (see ``providers.http``).
        """
        return self._call(spec.model.model or DEFAULT_MODEL, [{"text": spec.prompt}], spec,
                          sink)

    def edit(self, spec: EditSpec, sink: ProgressSink) -> list[GeneratedImage]:
        """Edit: the prompt plus the source image inline (PNG base64); no mask or strength
        (the model decides how much to change)."""
        parts = [{"text": spec.prompt},
                 {"inlineData": {"mimeType": "image/png", "data": image_to_b64(spec.init_image)}}]
        return self._call(spec.model.model or DEFAULT_MODEL, parts, spec, sink)

    def models(self) -> list[dict[str, Any]]:
        """Models from ``GET /models`` whose name says ``image``."""
        body = self.client.json("GET", "/models?pageSize=1000", retries=0)
        items = body.get("models", []) if isinstance(body, dict) else []
        return [{"id": m["name"].removeprefix("models/"),
                 "name": m.get("displayName") or m["name"], "pipeline_type": "gemini"}
                for m in items if isinstance(m, dict) and "image" in m.get("name", "")]
