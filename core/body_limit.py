"""ASGI middleware capping request bodies before they are read (``REQUEST_BODY_MAX_BYTES``).

Django's ASGI handler reads the whole body into a spooled temporary file before any Django
middleware runs, so ``DATA_UPLOAD_MAX_MEMORY_SIZE`` alone comes too late: a 300 MB upload is on
disk before the 400. This wrapper sits in front of Django:

- a ``Content-Length`` above the cap is answered 413 at once, from the header; the body is never
  received (the server then closes the connection);
- a body without ``Content-Length`` (chunked) is counted as it arrives; past the cap Django is
  told the client left (``http.disconnect``: it stops reading and answers nothing) and the
  wrapper answers 413 itself.

The answer is the API's error shape, ``{"code": "request_too_large", "message"}``.
"""

from __future__ import annotations

import json

from django.conf import settings


def _content_length(scope) -> int | None:
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _answer_413(send, limit: int) -> None:
    body = json.dumps({"code": "request_too_large",
                       "message": f"Request bodies are limited to {limit} bytes."}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """Wrap an ASGI HTTP application; ``limit`` defaults to ``settings.REQUEST_BODY_MAX_BYTES``
    (bytes; 0 turns the cap off)."""

    def __init__(self, app, limit: int | None = None):
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        limit = self.limit if self.limit is not None else settings.REQUEST_BODY_MAX_BYTES
        if scope["type"] != "http" or not limit:
            return await self.app(scope, receive, send)
        length = _content_length(scope)
        if length is not None and length > limit:
            return await _answer_413(send, limit)
        received = 0
        over = False
        started = False

        async def capped_receive():
            nonlocal received, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, capped_receive, tracking_send)
        if over and not started:
            await _answer_413(send, limit)
