"""A fake Parasail OpenAI-compatible chat API (docs/protocols.md#parasail) under ``/v1``.

- ``POST /v1/chat/completions`` → ``{"choices":[{"message":{"role":"assistant","content"},
  "finish_reason":"stop"}]}`` whose content is ``"<enhanced> " + the user message``;
- a user message with "forbidden" → ``finish_reason: "content_filter"`` and empty content;
- ``GET /v1/models`` (401 without a key); OpenAI-style errors (UNVERIFIED for Parasail).
"""

from __future__ import annotations

from werkzeug import Request, Response

from .base import FORBIDDEN, FakeServer, json_response


class FakeParasail(FakeServer):
    api_key = "ps-test"

    def error(self, status: int, message: str, *, code: str = "") -> Response:
        return json_response({"error": {"message": message, "type": "invalid_request_error",
                                        "code": code or None}}, status)

    def handle(self, request: Request) -> Response:
        if request.path == "/v1/models":
            return json_response({"object": "list", "data": [
                {"id": "parasail-llama-33-70b-fp8", "object": "model"}]})
        if request.path == "/v1/chat/completions" and request.method == "POST":
            body = request.get_json()
            user = [m["content"] for m in body["messages"] if m["role"] == "user"][-1]
            if FORBIDDEN in user:
                choice = {"index": 0, "message": {"role": "assistant", "content": ""},
                          "finish_reason": "content_filter"}
            else:
                choice = {"index": 0, "finish_reason": "stop", "message": {
                    "role": "assistant", "content": f"<enhanced> {user}, golden hour light"}}
            return json_response({"id": "chatcmpl-1", "object": "chat.completion",
                                  "model": body.get("model"), "choices": [choice]})
        return self.error(404, "Not found")
