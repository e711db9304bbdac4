"""The whole stack as a user meets it: a real daphne server, a real Celery worker (a separate
process on Redis when REDIS_URL is set, else the embedded worker thread of the server), the
real diffusers pipeline, HTTP for the API and a real WebSocket client for progress."""

import contextlib
import io
import json
import os

import pytest
import requests
from PIL import Image as PILImage
from websockets.sync.client import connect

from loras.services import lora_register
from tests.factories import ModelProfileFactory, UserFactory
from tests.support.servers import start_server, start_worker_process

pytestmark = pytest.mark.django_db(transaction=True)
REDIS_MODE = bool(os.environ.get("REDIS_URL"))


@contextlib.contextmanager
def running_stack(media_root):
    with contextlib.ExitStack() as stack:
        if REDIS_MODE:
            stack.enter_context(start_worker_process(media_root=media_root))
        url = stack.enter_context(start_server(media_root=media_root, embedded=not REDIS_MODE))
        yield url


def test_prompt_in_image_out_with_live_progress(settings, demo_assets):
    UserFactory(username="carol")
    ModelProfileFactory(slug="demo", name="Demo", provider="diffusers_local",
                        pipeline_type="sd", model_path=str(demo_assets["model"]))
    lora = lora_register(path=str(demo_assets["lora"]), name="demo-warm")

    with running_stack(settings.MEDIA_ROOT) as base:
        http = requests.Session()
        token = http.post(f"{base}/api/auth/token/",
                          json={"username": "carol", "password": "pw-123456"}).json()["token"]
        http.headers["Authorization"] = f"Token {token}"

        bad = http.post(f"{base}/api/generate/", json={"prompt": "x", "width": 65})
        assert bad.status_code == 400 and "width" in bad.json()["fields"]

        resp = http.post(f"{base}/api/generate/", json={
            "prompt": "a lighthouse at dusk <lora:demo-warm:0.8>", "model": "demo",
            "width": 64, "height": 64, "steps": 5, "seed": 1234, "guidance_scale": 4.0})
        assert resp.status_code == 202, resp.text
        body = resp.json()

        ws_base = base.replace("http://", "ws://")
        events = []
        with connect(f"{ws_base}{body['ws_url']}?token={token}",
                     additional_headers={"Origin": base}, open_timeout=10) as ws:
            while True:
                message = json.loads(ws.recv(timeout=120))
                events.append(message["job"])
                if message["job"]["status"] in ("succeeded", "failed", "canceled"):
                    break
        final = events[-1]
        assert final["status"] == "succeeded", final["error"]
        pushed = events[1:]  # events[0] is the snapshot read on connect
        steps = [e["step"] for e in pushed if e["status"] == "running"]
        assert steps == sorted(steps) and steps[-1] == 5
        assert [e["seq"] for e in pushed] == sorted(e["seq"] for e in pushed)

        status = http.get(f"{base}{body['status_url']}").json()
        assert status["job"]["status"] == "succeeded"
        (image,) = status["images"]
        png = http.get(f"{base}{image['url']}")
        assert png.status_code == 200
        picture = PILImage.open(io.BytesIO(png.content))
        assert picture.size == (64, 64)
        params = picture.text["parameters"]
        assert params.startswith("a lighthouse at dusk <lora:demo-warm:0.8>\n")
        assert "Seed: 1234" in params and "Size: 64x64" in params
        assert f'Lora hashes: "demo-warm: {lora.autov3[:12]}"' in params
        thumb = http.get(f"{base}{image['thumbnail_url']}")
        assert PILImage.open(io.BytesIO(thumb.content)).format == "WEBP"
