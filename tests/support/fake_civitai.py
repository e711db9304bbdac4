"""A fake Civitai over real HTTP on loopback (pytest-httpserver), following
docs/protocols.md#civitai.

Endpoints:
- ``GET /api/v1/model-versions/by-hash/{hash}`` (upper-cases the hash; SHA256, AutoV2, AutoV3)
  → the model version, or ``404 {"error":"Model not found"}``.
- ``GET /api/v1/model-versions/{id}`` and ``GET /api/v1/models/{id}`` (404
  ``{"error":"No model with id N"}``).
- ``GET /api/v1/images?modelVersionId=&limit=&cursor=`` with ``metadata.nextCursor``.
- ``GET /api/download/models/{versionId}``: login-required / early-access files answer 401/403
  JSON with ``Content-Type: application/json``, else a redirect to an HTML page (200
  ``text/html``); success is a **307** to ``/files/<name>?response-content-disposition=…``, which
  serves the bytes with ``Range`` support (206 / 416) and ``Content-Disposition``.
- Scripted failures: :meth:`FakeCivitai.fail_next` answers N requests whose path starts with a
  prefix with a status (429 with ``Retry-After``, 500...).

Every request is recorded in :attr:`FakeCivitai.requests` (a real observable for tests).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import struct
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import quote

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response


def safetensors_bytes(*, seed: int = 0, metadata: dict | None = None, floats: int = 64) -> bytes:
    """A small valid .safetensors file (8-byte LE header length + JSON header + F32 data)."""
    data = struct.pack(f"<{floats}f", *[(seed * 31 + i) / 7.0 for i in range(floats)])
    header = {"lora_unet_down.lora_down.weight": {"dtype": "F32", "shape": [floats // 4, 4],
                                                  "data_offsets": [0, len(data)]}}
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + data


def png_bytes(color=(200, 30, 30)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buf, format="PNG")
    return buf.getvalue()


def file_hashes_upper(data: bytes) -> dict:
    """Civitai ``files[].hashes`` of ``data`` (docs/protocols.md#model-hashes): SHA256,
    AutoV2 (10 hex), AutoV3 (SHA-256 after the safetensors header; 12 hex as the API docs
    show)."""
    sha = hashlib.sha256(data).hexdigest().upper()
    n = struct.unpack("<Q", data[:8])[0]
    autov3 = hashlib.sha256(data[8 + n:]).hexdigest().upper()
    return {"SHA256": sha, "AutoV2": sha[:10], "AutoV3": autov3[:12]}


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    headers: dict
    at: float = field(default_factory=time.monotonic)


class FakeCivitai:
    """Start with ``FakeCivitai()`` (or the ``fake_civitai`` fixture); stop with :meth:`stop`."""

    def __init__(self):
        self.server = HTTPServer(host="127.0.0.1", threaded=True)
        self.server.expect_request(re.compile(r"^/.*")).respond_with_handler(self._dispatch)
        self.server.start()
        self.base_url = f"http://127.0.0.1:{self.server.port}"
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget every published version, scripted failure and recorded request."""
        self.requests: list[Recorded] = []
        self.versions: dict[int, dict] = {}
        self.models: dict[int, dict] = {}
        self.hash_index: dict[str, int] = {}
        self.files: dict[str, bytes] = {}          # file name -> bytes
        self.version_files: dict[int, str] = {}    # version id -> file name
        self.images: dict[str, bytes] = {}         # image name -> bytes
        self.login_required: set[int] = set()
        self.early_access: set[int] = set()
        self.api_key = ""
        self.ignore_json_header = False            # act like a proxy that drops Content-Type
        self.chunk_delay = 0.0                     # seconds between 64 KiB chunks of a file
        self.chunk_size = 64 * 1024
        self.cut_after_bytes: int | None = None    # drop the connection after this many bytes
        self._failures: list[list] = []            # [prefix, status, remaining, retry_after]

    def stop(self) -> None:
        if self.server.is_running():
            self.server.stop()

    # -- test set-up ----------------------------------------------------------------------
    def add_version(self, *, version_id: int, model_id: int, data: bytes,
                    file_name: str = "", base_model: str = "SDXL 1.0",
                    trained_words: tuple = ("trig1",), tags: tuple = ("character", "anime"),
                    nsfw_level: int = 1, image_count: int = 1, creator: str = "painter",
                    model_name: str = "", login_required: bool = False,
                    early_access: bool = False, hashes: dict | None = None) -> dict:
        """Publish a LoRA model version holding ``data``; returns the version JSON."""
        file_name = file_name or f"lora_{version_id}.safetensors"
        hashes = hashes or file_hashes_upper(data)
        images = []
        for i in range(image_count):
            name = f"{version_id}-{i}.png"
            self.images[name] = png_bytes((40 * i % 255, 90, 160))
            images.append({"url": f"{self.base_url}/img/{name}", "width": 8, "height": 8,
                           "nsfwLevel": nsfw_level if i == 0 else 1, "type": "image",
                           "hasMeta": True, "meta": {"prompt": f"sample {i}", "seed": i}})
        version = {
            "id": version_id, "modelId": model_id, "name": f"v{version_id}",
            "description": None, "baseModel": base_model, "baseModelType": "Standard",
            "status": "Published", "availability": "Public", "nsfwLevel": nsfw_level,
            "createdAt": "2025-01-01T00:00:00.000Z", "publishedAt": "2025-01-01T00:00:00.000Z",
            "trainedWords": list(trained_words), "earlyAccessConfig": None,
            "earlyAccessEndsAt": "2099-01-01T00:00:00.000Z" if early_access else None,
            "stats": {"downloadCount": 10, "thumbsUpCount": 2},
            "model": {"name": model_name or f"Model {model_id}", "type": "LORA", "nsfw": False,
                      "poi": False},
            "files": [{"id": version_id * 10, "name": file_name, "type": "Model",
                       "sizeKB": len(data) / 1024,
                       "metadata": {"format": "SafeTensor", "size": None, "fp": "fp16"},
                       "pickleScanResult": "Success", "virusScanResult": "Success",
                       "hashes": hashes,
                       "downloadUrl": f"{self.base_url}/api/download/models/{version_id}",
                       "primary": True}],
            "images": images,
            "downloadUrl": f"{self.base_url}/api/download/models/{version_id}",
        }
        self.versions[version_id] = version
        self.models[model_id] = {
            "id": model_id, "name": version["model"]["name"], "description": "<p>fake</p>",
            "type": "LORA", "poi": False, "nsfw": False, "allowNoCredit": True,
            "allowCommercialUse": ["Image", "RentCivit"], "allowDerivatives": True,
            "allowDifferentLicense": False, "tags": list(tags),
            "creator": {"username": creator, "image": None},
            "modelVersions": [version],
        }
        for value in hashes.values():
            self.hash_index[value.upper()] = version_id
        self.files[file_name] = data
        self.version_files[version_id] = file_name
        if login_required:
            self.login_required.add(version_id)
        if early_access:
            self.early_access.add(version_id)
        return version

    def fail_next(self, prefix: str, *, status: int = 429, count: int = 1,
                  retry_after: str | None = None) -> None:
        """Answer the next ``count`` requests whose path starts with ``prefix`` with ``status``
        (429 ``{"error":"Too Many Requests"}`` + ``Retry-After`` when given, or a 5xx)."""
        with self._lock:
            self._failures.append([prefix, status, count, retry_after])

    def count(self, prefix: str) -> int:
        """How many requests had a path starting with ``prefix``."""
        return sum(1 for r in self.requests if r.path.startswith(prefix))

    def last(self, prefix: str) -> Recorded:
        return [r for r in self.requests if r.path.startswith(prefix)][-1]

    # -- dispatch -------------------------------------------------------------------------
    def _scripted(self, path: str) -> Response | None:
        with self._lock:
            for item in self._failures:
                prefix, status, remaining, retry_after = item
                if remaining > 0 and path.startswith(prefix):
                    item[2] -= 1
                    headers = {"Retry-After": retry_after} if retry_after is not None else {}
                    body = {"error": "Too Many Requests" if status == 429 else "Internal error"}
                    return _json(body, status, headers)
        return None

    def _dispatch(self, request: Request) -> Response:
        self.requests.append(Recorded(request.method, request.path,
                                      request.query_string.decode(), dict(request.headers)))
        scripted = self._scripted(request.path)
        if scripted is not None:
            return scripted
        path = request.path
        if m := re.fullmatch(r"/api/v1/model-versions/by-hash/([^/]+)", path):
            version_id = self.hash_index.get(m.group(1).upper())
            if version_id is None:
                return _json({"error": "Model not found"}, 404)
            return _json(self.versions[version_id])
        if m := re.fullmatch(r"/api/v1/model-versions/(\d+)", path):
            version = self.versions.get(int(m.group(1)))
            return _json(version) if version else _json({"error": "Model not found"}, 404)
        if m := re.fullmatch(r"/api/v1/models/(\d+)", path):
            model = self.models.get(int(m.group(1)))
            return (_json(model) if model
                    else _json({"error": f"No model with id {m.group(1)}"}, 404))
        if path == "/api/v1/images":
            return self._images(request)
        if m := re.fullmatch(r"/api/download/models/(\d+)", path):
            return self._download(request, int(m.group(1)))
        if m := re.fullmatch(r"/files/([^/]+)", path):
            return self._file(request, m.group(1))
        if m := re.fullmatch(r"/img/([^/]+)", path):
            data = self.images.get(m.group(1))
            return Response(data, 200, content_type="image/png") if data else _json({}, 404)
        if path in ("/login", "/purchase/early-access"):
            return Response("<!doctype html><html><body><form>Log in</form></body></html>",
                            200, content_type="text/html; charset=utf-8")
        return _json({"error": "Not found"}, 404)

    def _images(self, request: Request) -> Response:
        version_id = request.args.get("modelVersionId", type=int)
        limit = max(1, min(request.args.get("limit", default=100, type=int), 200))
        start = int((request.args.get("cursor") or "0").split("|")[0])
        version = self.versions.get(version_id) or {}
        items = [{"id": version_id * 1000 + i, "url": img["url"], "width": 8, "height": 8,
                  "nsfwLevel": "None", "browsingLevel": img["nsfwLevel"], "meta": img["meta"],
                  "modelVersionIds": [version_id]}
                 for i, img in enumerate(version.get("images", []))]
        page = items[start:start + limit]
        metadata = {}
        if start + limit < len(items):
            metadata["nextCursor"] = f"{start + limit}|1744925337225"
        return _json({"items": page, "metadata": metadata})

    def _authorized(self, request: Request) -> bool:
        if not self.api_key:
            return False
        bearer = request.headers.get("Authorization", "")
        return bearer == f"Bearer {self.api_key}" or request.args.get("token") == self.api_key

    def _download(self, request: Request, version_id: int) -> Response:
        if request.method != "GET":
            return _json({"error": "Method not allowed"}, 405)
        wants_json = (request.headers.get("Content-Type", "").startswith("application/json")
                      and not self.ignore_json_header)
        if version_id not in self.version_files:
            return (_json({"error": "File not found"}, 404) if wants_json
                    else Response("File not found", 404, content_type="text/plain"))
        if version_id in self.early_access and not self._authorized(request):
            if wants_json:
                return _json({"error": "Early Access", "deadline": "2099-01-01T00:00:00.000Z"},
                             403)
            return _redirect(f"/purchase/early-access?modelVersionId={version_id}", 307)
        if version_id in self.login_required and not self._authorized(request):
            if wants_json:
                return _json({"error": "Unauthorized"}, 401)
            return _redirect(f"/login?reason=download-auth&returnUrl=/model-versions/"
                             f"{version_id}", 307)
        name = self.version_files[version_id]
        disposition = quote(f'attachment; filename="{name}"')
        return _redirect(f"{self.base_url}/files/{name}?X-Amz-Signature=fake&"
                         f"response-content-disposition={disposition}", 307)

    def _file(self, request: Request, name: str) -> Response:
        data = self.files.get(name)
        if data is None:
            return Response("Not found", 404, content_type="text/plain")
        total, start, end, status = len(data), 0, len(data) - 1, 200
        headers = {"Content-Disposition": f'attachment; filename="{name}"',
                   "Accept-Ranges": "bytes"}
        if m := re.fullmatch(r"bytes=(\d+)-(\d*)", request.headers.get("Range", "")):
            start = int(m.group(1))
            end = min(int(m.group(2)), total - 1) if m.group(2) else total - 1
            if start >= total:
                return Response(b"", 416, headers={"Content-Range": f"bytes */{total}"})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{total}"
        body = data[start:end + 1]
        headers["Content-Length"] = str(len(body))

        cut = self.cut_after_bytes
        self.cut_after_bytes = None  # one broken transfer

        def chunks():
            for i in range(0, len(body), self.chunk_size):
                if self.chunk_delay:
                    time.sleep(self.chunk_delay)
                if cut is not None and i + self.chunk_size > cut:
                    yield body[i:cut]
                    return  # fewer bytes than Content-Length: the client sees a broken body
                yield body[i:i + self.chunk_size]

        return Response(chunks(), status, headers=headers,
                        content_type="application/octet-stream", direct_passthrough=True)


def _json(body, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(body), status, headers=headers or {},
                    content_type="application/json")


def _redirect(location: str, status: int) -> Response:
    return Response("", status, headers={"Location": location})


def _fixture():
    import pytest

    @pytest.fixture(scope="session")
    def fake_civitai_server():
        fake = FakeCivitai()
        yield fake
        fake.stop()

    @pytest.fixture
    def fake_civitai(settings, fake_civitai_server):
        """A running :class:`FakeCivitai` (one server per session, reset for each test);
        settings point the client at it, allow loopback, and shrink backoffs (seconds) so
        retries are fast. The not-found cache and the limiter are reset."""
        from django.core.cache import cache

        from loras.civitai import limiter

        fake = fake_civitai_server
        fake.reset()
        settings.CIVITAI_BASE_URL = fake.base_url
        settings.CIVITAI_API_KEY = ""
        settings.OUTBOUND_ALLOW_PRIVATE = True
        settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
        settings.CIVITAI_BACKOFF_SECONDS = 0.01
        settings.CIVITAI_BACKOFF_MAX_SECONDS = 0.05
        settings.CIVITAI_MAX_RETRY_AFTER = 2.0
        settings.CIVITAI_MAX_RETRIES = 3
        settings.CIVITAI_TIMEOUT = 10.0
        cache.clear()
        limiter.reset()
        yield fake
        fake.reset()
        limiter.reset()
        cache.clear()

    return fake_civitai_server, fake_civitai


fake_civitai_server, fake_civitai = _fixture()
