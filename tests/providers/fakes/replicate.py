"""A fake Replicate predictions API (docs/protocols.md#replicate).

- ``POST /v1/models/{owner}/{name}/predictions`` (``{"input"}``) and ``POST /v1/predictions``
  (``{"version", "input"}``) → 201 prediction; with ``Prefer: wait`` and
  :attr:`FakeReplicate.polls_needed` == 0 it is already ``succeeded``, else ``starting`` and
  each ``GET /v1/predictions/{id}`` moves it on until ``polls_needed`` polls were made.
- ``POST /v1/predictions/{id}/cancel`` → the prediction, ``canceled``.
- outputs: ``{base}/delivery/{id}/out-{i}.png`` (need ``Authorization``), PNGs of
  ``input.width``x``input.height`` (or the input image's size × ``input.scale``).
- a prompt with "forbidden" fails the prediction with ``error`` "NSFW content detected…".
- errors: RFC 7807 ``application/problem+json`` (``title``, ``detail``, ``status``).
"""

from __future__ import annotations

import itertools
import re

from werkzeug import Request, Response

from .base import FORBIDDEN, FakeServer, decode_image, json_response, png_bytes


class FakeReplicate(FakeServer):
    api_key = "r8_test"

    def __init__(self):
        super().__init__()
        self.polls_needed = 0
        self.predictions: dict[str, dict] = {}
        self.outputs: dict[str, bytes] = {}
        self._ids = itertools.count(1)
        self._polls: dict[str, int] = {}

    def error(self, status: int, message: str, *, code: str = "") -> Response:
        return json_response({"type": "about:blank", "title": "Error", "status": status,
                              "detail": message}, status,
                             content_type="application/problem+json")

    def auth_error(self) -> Response:
        return self.error(401, "Invalid token.")

    def handle(self, request: Request) -> Response:
        path = request.path
        if path == "/v1/predictions" and request.method == "GET":
            return json_response({"next": None, "previous": None, "results": []})
        if (m := re.fullmatch(r"/v1/models/([^/]+/[^/]+)/predictions", path)) or (
                path == "/v1/predictions" and request.method == "POST"):
            body = request.get_json()
            model = m.group(1) if m else body.get("version", "")
            return self._create(model, body.get("input") or {},
                                wait="wait" in request.headers.get("Prefer", ""))
        if m := re.fullmatch(r"/v1/predictions/([^/]+)/cancel", path):
            prediction = self.predictions.get(m.group(1))
            if prediction is None:
                return self.error(404, "Not found.")
            if prediction["status"] not in ("succeeded", "failed"):
                prediction.update(status="canceled", output=None)
            return json_response(prediction)
        if m := re.fullmatch(r"/v1/predictions/([^/]+)", path):
            prediction = self.predictions.get(m.group(1))
            if prediction is None:
                return self.error(404, "Not found.")
            self._advance(prediction)
            return json_response(prediction)
        if m := re.fullmatch(r"/delivery/(.+)", path):
            data = self.outputs.get(m.group(1))
            return Response(data, content_type="image/png") if data else self.error(404, "Gone")
        return self.error(404, "Not found.")

    def _create(self, model: str, data: dict, *, wait: bool) -> Response:
        pid = f"pred{next(self._ids):04d}"
        prediction = {"id": pid, "model": model, "version": "hidden", "input": data,
                      "logs": "", "output": None, "error": None, "status": "starting",
                      "source": "api", "data_removed": False, "metrics": {},
                      "urls": {"get": f"{self.base_url}/v1/predictions/{pid}",
                               "cancel": f"{self.base_url}/v1/predictions/{pid}/cancel",
                               "web": f"https://replicate.com/p/{pid}"}}
        self.predictions[pid] = prediction
        self._polls[pid] = 0
        if wait and self.polls_needed == 0:
            self._finish(prediction)
        return json_response(prediction, 201)

    def _advance(self, prediction: dict) -> None:
        if prediction["status"] in ("succeeded", "failed", "canceled"):
            return
        self._polls[prediction["id"]] += 1
        if self._polls[prediction["id"]] >= self.polls_needed:
            self._finish(prediction)
        else:
            prediction["status"] = "processing"

    def _finish(self, prediction: dict) -> None:
        data = prediction["input"]
        if FORBIDDEN in str(data.get("prompt", "")):
            prediction.update(status="failed", error="NSFW content detected. Try running it "
                                                     "again, or try a different prompt.")
            return
        if "image" in data and "scale" in data:  # an upscaler
            source = decode_image(data["image"])
            sizes = [(source.width * int(data["scale"]), source.height * int(data["scale"]))]
        else:
            if "image" in data:
                decode_image(data["image"])
            sizes = [(int(data.get("width", 64)), int(data.get("height", 64)))] * int(
                data.get("num_outputs", 1))
        urls = []
        for i, (w, h) in enumerate(sizes):
            name = f"{prediction['id']}/out-{i}.png"
            self.outputs[name] = png_bytes(w, h, seed=int(data.get("seed", 0)) + i,
                                           prompt=str(data.get("prompt", "")))
            urls.append(f"{self.base_url}/delivery/{name}")
        prediction.update(status="succeeded", output=urls,
                          metrics={"predict_time": 0.1, "total_time": 0.2})
