"""A fake Gemini Generative Language API (docs/protocols.md#gemini) under ``/v1beta``.

- ``POST /v1beta/models/{model}:generateContent`` with ``x-goog-api-key`` (or ``?key=``):
  one image part (base64 PNG inline) plus a text part; the size follows
  ``imageConfig.aspectRatio`` ``a:b`` as ``(32a)x(32b)`` pixels (small, for speed; the real
  "1K" is about 1024 on the long side); inline input images must decode;
- a prompt with "forbidden" → 200 ``{"promptFeedback":{"blockReason":"SAFETY"},
  "candidates":[]}``;
- a bad key → 400 ``INVALID_ARGUMENT`` with ``reason: API_KEY_INVALID``; errors
  ``{"error":{"code","message","status","details"}}``; :meth:`FakeGemini.rate_limit_body`
  gives a 429 with ``RetryInfo.retryDelay``.
- ``GET /v1beta/models`` lists two models.
"""

from __future__ import annotations

import re

from werkzeug import Request, Response

from .base import FORBIDDEN, FakeServer, decode_image, json_response, png_b64

STATUS = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
          429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE",
          504: "DEADLINE_EXCEEDED"}


def rate_limit_body(retry_delay: str = "1s") -> dict:
    return {"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).",
                      "status": "RESOURCE_EXHAUSTED", "details": [
                          {"@type": "type.googleapis.com/google.rpc.RetryInfo",
                           "retryDelay": retry_delay}]}}


class FakeGemini(FakeServer):
    api_key = "AIza-test"

    def authorized(self, request: Request) -> bool:
        key = request.headers.get("x-goog-api-key") or request.args.get("key")
        return key == self.api_key

    def error(self, status: int, message: str, *, code: str = "") -> Response:
        return json_response({"error": {"code": status, "message": message,
                                        "status": STATUS.get(status, "UNKNOWN")}}, status)

    def auth_error(self) -> Response:
        return json_response({"error": {
            "code": 400, "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT", "details": [{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                "domain": "googleapis.com"}]}}, 400)

    def handle(self, request: Request) -> Response:
        if request.path == "/v1beta/models" and request.method == "GET":
            return json_response({"models": [
                {"name": "models/gemini-2.5-flash-image", "displayName": "Nano Banana"},
                {"name": "models/gemini-2.5-flash", "displayName": "Gemini 2.5 Flash"}]})
        m = re.fullmatch(r"/v1beta/models/([^/:]+):generateContent", request.path)
        if not m or request.method != "POST":
            return self.error(404, "Not found")
        body = request.get_json()
        parts = body["contents"][0]["parts"]
        text = " ".join(p.get("text", "") for p in parts)
        for part in parts:
            inline = part.get("inlineData") or part.get("inline_data")
            if inline:
                decode_image(inline["data"])
        if FORBIDDEN in text:
            return json_response({"promptFeedback": {"blockReason": "SAFETY"},
                                  "candidates": []})
        ratio = (body.get("generationConfig") or {}).get("imageConfig", {}).get(
            "aspectRatio", "1:1")
        a, b = (int(x) for x in ratio.split(":"))
        return json_response({"candidates": [{"content": {"role": "model", "parts": [
            {"text": "Here is your image"},
            {"inlineData": {"mimeType": "image/png",
                            "data": png_b64(32 * a, 32 * b, prompt=text)}}]},
            "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 1290,
                              "totalTokenCount": 1299},
            "modelVersion": m.group(1), "responseId": "resp-1"})
