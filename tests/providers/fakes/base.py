"""The shared machinery of the fake provider servers."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import threading
import time
from dataclasses import dataclass, field

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

FORBIDDEN = "forbidden"  # a prompt with this word is refused by every fake's safety system


def json_response(body, status: int = 200, headers: dict | None = None,
                  content_type: str = "application/json") -> Response:
    return Response(json.dumps(body), status=status, headers=headers or {},
                    content_type=content_type)


def png_bytes(width: int, height: int, *, seed: int = 0, prompt: str = "") -> bytes:
    """A PNG of ``width``x``height`` pixels whose colour is derived from (prompt, seed)."""
    from PIL import Image

    digest = hashlib.sha256(f"{prompt}|{seed}".encode()).digest()
    buf = io.BytesIO()
    Image.new("RGB", (width, height), tuple(digest[:3])).save(buf, format="PNG")
    return buf.getvalue()


def png_b64(width: int, height: int, *, seed: int = 0, prompt: str = "") -> str:
    return base64.b64encode(png_bytes(width, height, seed=seed, prompt=prompt)).decode()


def decode_image(data: str | bytes):
    """A PIL image from base64, a data URI or bytes (fakes check that inputs are images)."""
    from PIL import Image

    if isinstance(data, str):
        if data.startswith("data:"):
            data = data.split(",", 1)[1]
        data = base64.b64decode(data)
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict
    body: bytes
    at: float = field(default_factory=time.monotonic)

    def json(self):
        return json.loads(self.body or b"null")


class FakeServer:
    """Base class: start on construction, :meth:`stop` at the end.

    Subclasses implement :meth:`handle` (the protocol), :meth:`authorized` and
    :meth:`error` (the vendor's error body for a status and message).
    """

    api_key = "test-key"

    def __init__(self):
        self.server = HTTPServer(host="127.0.0.1", threaded=True)
        self.server.expect_request(re.compile(r"^/.*")).respond_with_handler(self._dispatch)
        self.server.start()
        self.base_url = f"http://127.0.0.1:{self.server.port}"
        self._lock = threading.Lock()
        self.requests: list[Recorded] = []
        self._script: list[list] = []  # [prefix, remaining, kind, value]

    def stop(self) -> None:
        if self.server.is_running():
            self.server.stop()

    # -- scripting -----------------------------------------------------------------------
    def fail_next(self, *, status: int, count: int = 1, path: str = "",
                  headers: dict | None = None, message: str = "",
                  body: dict | None = None) -> None:
        """Answer the next ``count`` requests whose path starts with ``path`` with ``status``
        and the vendor's error body (or ``body``), plus ``headers`` (e.g. Retry-After)."""
        with self._lock:
            self._script.append([path, count, "fail", (status, headers or {}, message, body)])

    def sleep_next(self, seconds: float, *, count: int = 1, path: str = "") -> None:
        """Make the next ``count`` matching requests wait ``seconds`` before being handled."""
        with self._lock:
            self._script.append([path, count, "sleep", seconds])

    def count(self, prefix: str = "", method: str = "") -> int:
        return sum(1 for r in self.requests if r.path.startswith(prefix)
                   and (not method or r.method == method))

    def last(self, prefix: str = "") -> Recorded:
        return [r for r in self.requests if r.path.startswith(prefix)][-1]

    # -- to implement --------------------------------------------------------------------
    def handle(self, request: Request) -> Response:  # pragma: no cover - abstract
        raise NotImplementedError

    def authorized(self, request: Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.api_key}"

    def error(self, status: int, message: str, *, code: str = "") -> Response:
        return json_response({"error": {"message": message, "code": code}}, status)

    def auth_error(self) -> Response:
        return self.error(401, "Invalid API key.")

    # -- dispatch ------------------------------------------------------------------------
    def _dispatch(self, request: Request) -> Response:
        self.requests.append(Recorded(request.method, request.path, dict(request.headers),
                                      request.get_data()))
        sleep, failure = 0.0, None
        with self._lock:
            for item in self._script:
                prefix, remaining, kind, value = item
                if remaining > 0 and request.path.startswith(prefix):
                    if kind == "sleep" and not sleep:
                        item[1] -= 1
                        sleep = value
                    elif kind == "fail" and failure is None:
                        item[1] -= 1
                        failure = value
        if sleep:
            time.sleep(sleep)
        if failure is not None:
            status, headers, message, body = failure
            if body is not None:
                return json_response(body, status, headers)
            response = self.error(status, message or f"fake failure {status}")
            response.headers.update(headers)
            return response
        if not self.authorized(request):
            return self.auth_error()
        return self.handle(request)
