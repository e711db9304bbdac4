"""OpenAI Images API as a provider (no ``openai`` package: plain HTTP through providers.http).

Protocol (docs/protocols.md#openai-images, from openai/openai-python ``image_generate_params.py``,
``image_edit_params.py``, ``images_response.py``):

- ``POST {base}/images/generations`` (JSON: ``prompt``, ``model``, ``n``, ``size``,
  ``quality``, ``response_format`` — dall-e only; gpt-image always answers ``b64_json``);
- ``POST {base}/images/edits`` (multipart: ``image`` PNG, optional ``mask`` PNG whose
  **transparent** pixels are edited, ``prompt``, ``model``, ``n``, ``size``);
- answer ``{"created", "data": [{"b64_json", "revised_prompt"?}], "size"?, "usage"?}``,
  synchronous;
- errors ``{"error":{"message","type","param","code"}}``: 400 (``content_policy_violation``),
  401, 403, 429 (``insufficient_quota`` is permanent), 5xx; SDKs honour ``retry-after-ms``.

Sizes are a fixed list per model, so the closest one by aspect ratio is asked
(``exact_size`` False).
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
from .remote import RemoteProvider, decode_image, image_to_png_bytes

DEFAULT_MODEL = "gpt-image-1"
SIZES = {
    "dall-e-2": ("256x256", "512x512", "1024x1024"),
    "dall-e-3": ("1024x1024", "1792x1024", "1024x1792"),
    "gpt-image": ("1024x1024", "1536x1024", "1024x1536"),
}


def size_for(model: str, width: int, height: int) -> str:
    """The size string of ``model`` closest to ``width``x``height`` (aspect first, then area)."""
    sizes = SIZES.get(model) or SIZES["gpt-image"]

    def distance(size: str) -> tuple[float, float]:
        w, h = (int(v) for v in size.split("x"))
        return abs(w / h - width / height), abs(w * h - width * height)

    return min(sizes, key=distance)


class OpenaiProvider(RemoteProvider):
    """Options: ``api_key`` (OPENAI_API_KEY), ``base_url``, and the common remote options.
    A profile's ``options`` may set ``quality``, ``background``, ``moderation``…
    (sent as they are)."""

    required = {"api_key": "OPENAI_API_KEY"}

    name = "openai"
    pipeline_types = ("openai",)
    capabilities = Capabilities(img2img=True, inpaint=True, negative_prompt=False, seed=False,
                                guidance=False, steps=False, max_width=1792, max_height=1792,
                                max_batch=10, exact_size=False)
    health_call = ("GET", "/models")

    def _fields(self, spec: GenerationSpec) -> dict[str, Any]:
        model = spec.model.model or DEFAULT_MODEL
        fields: dict[str, Any] = {"prompt": spec.prompt, "model": model, "n": spec.n,
                                  "size": size_for(model, spec.width, spec.height)}
        if model.startswith("dall-e"):
            fields["response_format"] = "b64_json"
        fields.update({k: v for k, v in (spec.model.options or {}).items()
                       if k in ("quality", "background", "moderation", "style",
                                "output_format", "input_fidelity")})
        return fields

    def generate(self, spec: GenerationSpec, sink: ProgressSink) -> list[GeneratedImage]:
        """``POST /images/generations``.

        Raises:
            ProviderError: ``content_policy``, ``provider_auth``, ``provider_quota`` and the
                other HTTP failures of ``providers.http``.
        """
        if sink.should_cancel():
            raise GenerationCancelled()
        fields = self._fields(spec)
        body = self.client.json("POST", "/images/generations", json=fields, sink=sink)
        return self._images(body, fields, spec, sink)

    def edit(self, spec: EditSpec, sink: ProgressSink) -> list[GeneratedImage]:
        """``POST /images/edits`` (multipart); our mask (white = repaint) becomes a PNG whose
        alpha is 0 where the model may paint. There is no denoising strength."""
        if sink.should_cancel():
            raise GenerationCancelled()
        fields = self._fields(spec)
        files: dict[str, tuple[str, bytes, str]] = {
            "image": ("image.png", image_to_png_bytes(spec.init_image.convert("RGB")),
                      "image/png")}
        if spec.mask is not None:
            from PIL import ImageOps

            rgba = spec.init_image.convert("RGBA").resize(spec.mask.size)
            rgba.putalpha(ImageOps.invert(spec.mask.convert("L")))
            files["mask"] = ("mask.png", image_to_png_bytes(rgba), "image/png")
        data = {k: str(v) for k, v in fields.items()}
        body = self.client.json("POST", "/images/edits", data=data, files=files, sink=sink)
        return self._images(body, fields, spec, sink)

    def _images(self, body: Any, fields: dict, spec: GenerationSpec,
                sink: ProgressSink) -> list[GeneratedImage]:
        items = body.get("data") if isinstance(body, dict) else None
        if not items:
            raise ProviderError("provider_bad_response", "OpenAI returned no images.")
        out = []
        for i, item in enumerate(items[:spec.n]):
            if not item.get("b64_json"):
                raise ProviderError("provider_bad_response", "OpenAI returned no b64_json.")
            out.append(GeneratedImage(
                image=decode_image(item["b64_json"], provider=self.name), seed=spec.seed + i,
                info={"provider": self.name, "model": fields["model"], "size": fields["size"],
                      "revised_prompt": item.get("revised_prompt"),
                      "created": body.get("created")}))
        sink.step(1, 1)
        return out

    def models(self) -> list[dict[str, Any]]:
        """Image models from ``GET /models`` (ids starting ``dall-e`` or ``gpt-image``)."""
        body = self.client.json("GET", "/models", retries=0)
        items = body.get("data", []) if isinstance(body, dict) else []
        return [{"id": m["id"], "name": m["id"], "pipeline_type": "openai"}
                for m in items if isinstance(m, dict)
                and str(m.get("id", "")).startswith(("dall-e", "gpt-image"))]
