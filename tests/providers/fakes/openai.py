"""A fake OpenAI Images API (docs/protocols.md#openai-images) under ``/v1``.

- ``POST /v1/images/generations`` (JSON) and ``POST /v1/images/edits`` (multipart: ``image``,
  optional ``mask`` PNG that must have an alpha channel, ``prompt``, ``model``, ``n``,
  ``size``) → ``{"created", "data": [{"b64_json"}], "size"…}``; ``size`` must be one of the
  model's sizes, else 400 ``invalid_request_error`` ``param: size``;
- a prompt with "forbidden" → 400 ``code: content_policy_violation``;
- a bad key → 401 ``invalid_api_key``; errors ``{"error":{"message","type","param","code"}}``.
- ``GET /v1/models``.
"""

from __future__ import annotations

import time

from werkzeug import Request, Response

from .base import FORBIDDEN, FakeServer, decode_image, json_response, png_b64

SIZES = {"dall-e-2": {"256x256", "512x512", "1024x1024"},
         "dall-e-3": {"1024x1024", "1792x1024", "1024x1792"}}
GPT_SIZES = {"1024x1024", "1536x1024", "1024x1536", "auto"}


class FakeOpenai(FakeServer):
    api_key = "sk-test"
    scale = 16  # answers are (w/scale)x(h/scale) pixels, for speed; 1 gives the real size

    def error(self, status: int, message: str, *, code: str = "",
              type_: str = "", param: str | None = None) -> Response:
        return json_response({"error": {
            "message": message, "param": param, "code": code or None,
            "type": type_ or ("server_error" if status >= 500 else "invalid_request_error")}},
            status)

    def auth_error(self) -> Response:
        return self.error(401, "Incorrect API key provided: sk-bad. You can find your API key "
                               "at https://platform.openai.com/account/api-keys.",
                          code="invalid_api_key")

    def handle(self, request: Request) -> Response:
        if request.path == "/v1/models":
            return json_response({"object": "list", "data": [
                {"id": "gpt-image-1", "object": "model"}, {"id": "dall-e-3", "object": "model"},
                {"id": "gpt-4o", "object": "model"}]})
        if request.path == "/v1/images/generations" and request.method == "POST":
            return self._images(request.get_json())
        if request.path == "/v1/images/edits" and request.method == "POST":
            if "image" not in request.files:
                return self.error(400, "Missing required parameter: 'image'.", param="image")
            decode_image(request.files["image"].read())
            if "mask" in request.files:
                mask = decode_image(request.files["mask"].read())
                if mask.mode != "RGBA":
                    return self.error(400, "Invalid mask: it must have an alpha channel.",
                                      param="mask")
            return self._images(dict(request.form))
        return self.error(404, "Invalid URL")

    def _images(self, fields: dict) -> Response:
        model = fields.get("model") or "dall-e-2"
        prompt = str(fields.get("prompt", ""))
        size = str(fields.get("size") or "1024x1024")
        if size not in SIZES.get(model, GPT_SIZES):
            return self.error(400, f"Invalid size {size!r} for model {model}.", param="size")
        if FORBIDDEN in prompt:
            return self.error(400, "Your request was rejected as a result of our safety "
                                   "system.", code="content_policy_violation",
                              type_="image_generation_user_error")
        w, h = (1024, 1024) if size == "auto" else (int(v) for v in size.split("x"))
        n = int(fields.get("n") or 1)
        return json_response({"created": int(time.time()), "size": size, "data": [
            {"b64_json": png_b64(w // self.scale, h // self.scale, seed=i, prompt=prompt)}
            for i in range(n)]})
