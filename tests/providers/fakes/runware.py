"""A fake Runware REST API (docs/protocols.md#runware) at ``POST /v1``.

- body: a JSON array of tasks; auth ``Authorization: Bearer`` or a first
  ``{"taskType":"authentication","apiKey"}`` task; a bad key → 401
  ``{"errors":[{"code":"invalidApiKey",…}]}``;
- ``ping`` → ``{"taskType":"ping","pong":true}``;
- ``imageInference`` → one ``data`` item per image (``taskUUID``, ``imageUUID``,
  ``imageBase64Data`` PNG, ``seed``, ``NSFWContent``, ``cost``); ``lora[].model`` must be a
  ``civitai:<m>@<v>`` AIR (else 400 ``invalidLora``); ``seedImage``/``maskImage`` must decode;
- a prompt with "forbidden" → 400 ``errors[{"code":"contentModerationFailed"}]`` (the real code
  name is UNVERIFIED; the docs say codes are still being standardised).
"""

from __future__ import annotations

import re
import uuid

from werkzeug import Request, Response

from .base import FORBIDDEN, FakeServer, decode_image, json_response, png_b64

AIR = re.compile(r"^civitai:\d+@\d+$")


class FakeRunware(FakeServer):
    api_key = "rw-test"

    def authorized(self, request: Request) -> bool:
        if request.headers.get("Authorization") == f"Bearer {self.api_key}":
            return True
        try:
            tasks = request.get_json()
        except Exception:  # noqa: BLE001
            return False
        return bool(tasks) and isinstance(tasks, list) and tasks[0].get(
            "taskType") == "authentication" and tasks[0].get("apiKey") == self.api_key

    def error(self, status: int, message: str, *, code: str = "",
              task: dict | None = None) -> Response:
        item = {"code": code or ("timeoutProvider" if status >= 500 else "error"),
                "message": message, "parameter": "", "taskType": (task or {}).get("taskType", ""),
                "taskUUID": (task or {}).get("taskUUID", "")}
        return json_response({"errors": [item]}, status)

    def auth_error(self) -> Response:
        return json_response({"errors": [{
            "code": "invalidApiKey", "message": "Invalid API key. Get one at "
            "https://my.runware.ai/signup", "parameter": "apiKey",
            "taskType": "authentication"}]}, 401)

    def handle(self, request: Request) -> Response:
        if request.path != "/v1" or request.method != "POST":
            return self.error(404, "Not found")
        tasks = request.get_json()
        data = []
        for task in tasks:
            kind = task.get("taskType")
            if kind == "authentication":
                data.append({"taskType": "authentication",
                             "connectionSessionUUID": str(uuid.uuid4())})
            elif kind == "ping":
                data.append({"taskType": "ping", "pong": True})
            elif kind == "imageInference":
                problem = self._check(task)
                if problem is not None:
                    return problem
                for i in range(int(task.get("numberResults", 1))):
                    seed = int(task.get("seed", 0)) + i
                    data.append({"taskType": "imageInference", "taskUUID": task["taskUUID"],
                                 "imageUUID": str(uuid.uuid4()), "seed": seed,
                                 "imageBase64Data": png_b64(int(task["width"]),
                                                            int(task["height"]), seed=seed,
                                                            prompt=task["positivePrompt"]),
                                 "NSFWContent": False, "cost": 0.0013})
            else:
                return self.error(400, f"Unknown taskType {kind!r}", code="invalidTaskType",
                                  task=task)
        return json_response({"data": data})

    def _check(self, task: dict) -> Response | None:
        if FORBIDDEN in task.get("positivePrompt", ""):
            return self.error(400, "The prompt was flagged by content moderation.",
                              code="contentModerationFailed", task=task)
        for lora in task.get("lora") or []:
            if not AIR.match(str(lora.get("model", ""))):
                return self.error(400, f"Invalid LoRA model {lora.get('model')!r}.",
                                  code="invalidLora", task=task)
        for key in ("seedImage", "maskImage"):
            if key in task:
                decode_image(task[key])
        try:
            uuid.UUID(task.get("taskUUID", ""), version=4)
        except ValueError:
            return self.error(400, "Invalid taskUUID.", code="invalidTaskUUID", task=task)
        return None
