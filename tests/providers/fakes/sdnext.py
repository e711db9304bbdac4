"""A fake SD.Next / A1111 API (docs/protocols.md#a1111-and-sdnext).

- ``POST /sdapi/v1/txt2img`` / ``img2img`` block for ``steps * step_delay`` seconds, updating
  the progress state; answer ``{"images": [b64 PNG], "parameters", "info": "<JSON string>"}``;
  ``img2img`` without ``init_images`` → ``404 "Init image not found"``; ``<lora:NAME:W>`` tags
  whose NAME is not in :attr:`FakeSdnext.loras` → recorded in :attr:`unknown_loras` (A1111 only
  warns).
- ``GET /sdapi/v1/progress``, ``POST /sdapi/v1/interrupt`` (the running job stops at its next
  step), ``GET /sdapi/v1/loras``, ``GET /sdapi/v1/sd-models``,
  ``POST /sdapi/v1/extra-single-image`` (resizes by ``upscaling_resize``).
- HTTP Basic auth when :attr:`username` is set: 401 ``WWW-Authenticate: Basic``.
- errors ``{"error": "HTTPException", "detail", "body": "", "errors": ""}``.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time

from werkzeug import Request, Response

from .base import FakeServer, decode_image, json_response, png_b64

LORA_TAG = re.compile(r"<lora:([^:>]+)(?::([^>]*))?>")


class FakeSdnext(FakeServer):
    username = ""
    password = "secret"

    def __init__(self):
        super().__init__()
        self.step_delay = 0.0
        self.loras = [{"name": "warm_style", "alias": "warmstyle",
                       "path": "/models/Lora/warm_style.safetensors",
                       "metadata": {"ss_network_dim": "4"}},
                      {"name": "hashed", "alias": "hashed", "path": "/models/Lora/x.safetensors",
                       "metadata": {"sshs_model_hash": "ab" * 32}}]
        self.checkpoints = [{"title": "v1-5-pruned-emaonly.safetensors [6ce0161689]",
                             "model_name": "v1-5-pruned-emaonly", "hash": "6ce0161689",
                             "sha256": "6ce0161689" + "0" * 54,
                             "filename": "/models/Stable-diffusion/v1-5.safetensors",
                             "config": None}]
        self.state = {"sampling_step": 0, "sampling_steps": 0, "job": "", "interrupted": False}
        self.progress_seen: list[int] = []
        self.unknown_loras: list[str] = []
        self._state_lock = threading.Lock()

    def authorized(self, request: Request) -> bool:
        if not self.username:
            return True
        auth = request.authorization
        return bool(auth and auth.username == self.username and auth.password == self.password)

    def auth_error(self) -> Response:
        return json_response({"detail": "Not authenticated"}, 401,
                             {"WWW-Authenticate": "Basic"})

    def error(self, status: int, message: str, *, code: str = "") -> Response:
        return json_response({"error": "HTTPException", "detail": message, "body": "",
                              "errors": ""}, status)

    def handle(self, request: Request) -> Response:
        path = request.path
        if path == "/sdapi/v1/progress":
            with self._state_lock:
                state = dict(self.state)
            total = state["sampling_steps"] or 1
            self.progress_seen.append(state["sampling_step"])
            return json_response({"progress": state["sampling_step"] / total,
                                  "eta_relative": 0.0, "state": {
                                      "skipped": False, "interrupted": state["interrupted"],
                                      "job": state["job"], "job_count": 1, "job_no": 0,
                                      "sampling_step": state["sampling_step"],
                                      "sampling_steps": state["sampling_steps"]},
                                  "current_image": None, "textinfo": None})
        if path == "/sdapi/v1/interrupt" and request.method == "POST":
            with self._state_lock:
                self.state["interrupted"] = True
            return json_response(None)
        if path == "/sdapi/v1/loras":
            return json_response(self.loras)
        if path == "/sdapi/v1/sd-models":
            return json_response(self.checkpoints)
        if path == "/sdapi/v1/extra-single-image" and request.method == "POST":
            body = request.get_json()
            image = decode_image(body["image"])
            factor = float(body.get("upscaling_resize") or 2)
            out = image.resize((int(image.width * factor), int(image.height * factor)))
            import io

            buf = io.BytesIO()
            out.save(buf, format="PNG")
            return json_response({"html_info": "<p>upscaled</p>",
                                  "image": base64.b64encode(buf.getvalue()).decode()})
        if path in ("/sdapi/v1/txt2img", "/sdapi/v1/img2img") and request.method == "POST":
            return self._generate(request.get_json(), img2img=path.endswith("img2img"))
        return self.error(404, "Not Found")

    def _generate(self, body: dict, *, img2img: bool) -> Response:
        if img2img:
            if not body.get("init_images"):
                return self.error(404, "Init image not found")
            decode_image(body["init_images"][0])
            if body.get("mask"):
                decode_image(body["mask"])
        known = {x["name"] for x in self.loras} | {x["alias"] for x in self.loras}
        for name, _weight in LORA_TAG.findall(body.get("prompt", "")):
            if name not in known:
                self.unknown_loras.append(name)
        steps = int(body.get("steps", 50))
        with self._state_lock:
            self.state.update(sampling_step=0, sampling_steps=steps, interrupted=False,
                              job="scripts_img2img" if img2img else "scripts_txt2img")
        for step in range(1, steps + 1):
            with self._state_lock:
                if self.state["interrupted"]:
                    break
                self.state["sampling_step"] = step
            if self.step_delay:
                time.sleep(self.step_delay)
        with self._state_lock:
            self.state.update(sampling_step=0, sampling_steps=0, job="")
        seed = int(body.get("seed", -1))
        seed = 1234 if seed == -1 else seed
        n = int(body.get("batch_size", 1)) * int(body.get("n_iter", 1))
        width, height = int(body.get("width", 512)), int(body.get("height", 512))
        seeds = [seed + i for i in range(n)]
        info = {"prompt": body.get("prompt", ""), "all_seeds": seeds, "seed": seed,
                "width": width, "height": height, "sampler_name": "Euler a",
                "cfg_scale": body.get("cfg_scale", 7.0), "steps": steps, "batch_size": n,
                "sd_model_name": "v1-5-pruned-emaonly", "sd_model_hash": "6ce0161689",
                "index_of_first_image": 0, "infotexts": []}
        images = [png_b64(width, height, seed=s, prompt=body.get("prompt", "")) for s in seeds]
        return json_response({"images": images, "parameters": {**body, "init_images": None},
                              "info": json.dumps(info)})
