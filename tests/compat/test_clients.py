"""The real client packages against a real server (``manage.py serve`` with its embedded
worker) on the tiny diffusers demo model: ``webuiapi`` for the A1111 API, the ``openai`` SDK
for the OpenAI Images API, and a ``websockets`` client without ``Origin`` for the job stream.

Sizes are tiny and steps few: the demo model makes noise, fast (docs/offline-models.md)."""

from __future__ import annotations

import base64
import io
import json
import threading
import time

import openai
import pytest
import requests
import webuiapi
from PIL import Image as PILImage
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from images.models import GenerationRequest, Image
from jobs.models import Job
from loras.services import lora_register
from tests.factories import ModelProfileFactory, UserFactory
from tests.support.servers import start_server

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def demo_assets(tmp_path_factory):
    from providers.demo import build_demo_lora, build_demo_model

    root = tmp_path_factory.mktemp("compat-models")
    return {"model": build_demo_model(root / "demo-sd-tiny"),
            "lora": build_demo_lora(root / "demo-warm.safetensors", seed=1)}


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker, tmp_path_factory):
    """One server for the module (its pipeline cache stays warm); every test makes its rows."""
    media = tmp_path_factory.mktemp("compat-media")
    with start_server(media_root=str(media), embedded=True, extra_env={
            "COMPAT_WAIT_SECONDS": "120", "DIFFUSERS_PREVIEW_EVERY": "1"}) as url:
        yield url


@pytest.fixture
def world(server, demo_assets):
    """alice with an API token, the demo model profile and one demo LoRA in the library."""
    from rest_framework.authtoken.models import Token

    user = UserFactory(username="alice")
    ModelProfileFactory(slug="demo", name="Demo", provider="diffusers_local",
                        pipeline_type="sd", model_path=str(demo_assets["model"]),
                        default_width=64, default_height=64, default_steps=2)
    lora = lora_register(path=str(demo_assets["lora"]), name="demo-warm")
    return {"base": server, "user": user, "token": Token.objects.create(user=user).key,
            "lora": lora}


def _webui(world, secret=None) -> webuiapi.WebUIApi:
    api = webuiapi.WebUIApi(baseurl=f"{world['base']}/sdapi/v1", sampler="Euler a", steps=2)
    api.set_auth("alice", secret or world["token"])
    return api


# ----------------------------------------------------------------------------- webuiapi
def test_webuiapi_txt2img_with_sampler_and_a_lora_in_the_prompt(world):
    api = _webui(world)
    result = api.txt2img(prompt="a lighthouse <lora:demo-warm:0.8>", negative_prompt="fog",
                         sampler_name="DPM++ 2M", scheduler="karras", seed=1234, steps=2,
                         width=64, height=64, cfg_scale=4, save_images=True)
    assert result.image.size == (64, 64)
    assert result.info["all_seeds"] == [1234]
    infotext = result.image.info["parameters"]
    assert "Seed: 1234" in infotext and "demo-warm" in infotext
    assert "Sampler: DPM++ 2M" in infotext and "Schedule type: Karras" in infotext
    gen = GenerationRequest.objects.get(user=world["user"])
    assert [x["name"] for x in gen.loras] == ["demo-warm"]
    assert gen.job.status == "succeeded"
    assert Image.objects.filter(user=world["user"]).count() == 1  # in the gallery


def test_webuiapi_hires_fix(world):
    result = _webui(world).txt2img(prompt="a kite", steps=2, width=64, height=64,
                                   enable_hr=True, hr_scale=2, hr_upscaler="Latent",
                                   hr_second_pass_steps=2, denoising_strength=0.6)
    assert result.image.size == (128, 128)
    assert "Hires upscale: 2" in result.image.info["parameters"]


def test_webuiapi_img2img_with_a_mask(world):
    init = PILImage.new("RGB", (64, 64), (200, 30, 30))
    mask = PILImage.new("L", (64, 64), 0)
    mask.paste(255, (0, 0, 32, 64))
    result = _webui(world).img2img(images=[init], mask_image=mask, prompt="a red kite",
                                   denoising_strength=1.0, steps=2, width=64, height=64,
                                   seed=5)
    assert result.image.size == (64, 64)
    assert GenerationRequest.objects.get(user=world["user"]).kind == "inpaint"
    assert "Denoising strength: 1" in result.image.info["parameters"]


def test_webuiapi_progress_during_a_job_and_interrupt(world):
    api = _webui(world)
    outcome: dict = {}

    def generate():
        outcome["result"] = api.txt2img(prompt="a long one", steps=150, width=64, height=64)

    worker = threading.Thread(target=generate)
    worker.start()
    seen = None
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        progress = api.get_progress()
        if progress["state"]["job_count"] and progress["state"]["sampling_step"] > 0:
            seen = progress
            break
        time.sleep(0.1)
    assert seen is not None, "no running job seen in the progress"
    assert 0 < seen["progress"] < 1 and seen["state"]["sampling_steps"] == 150
    assert seen["textinfo"]
    preview = PILImage.open(io.BytesIO(base64.b64decode(seen["current_image"])))
    assert preview.format == "PNG"  # the step preview (DIFFUSERS_PREVIEW_EVERY=1), as A1111's
    api.interrupt()
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert outcome["result"].images == [] and outcome["result"].info["interrupted"] is True
    assert Job.objects.get(user=world["user"]).status == "canceled"
    assert api.get_progress()["state"]["job_count"] == 0


def test_webuiapi_models_loras_samplers_options_round_trip(world):
    ModelProfileFactory(slug="other", name="Other", provider="diffusers_local",
                        pipeline_type="sd", model_path=world["lora"].abs_path, is_default=False)
    api = _webui(world, secret="pw-123456")  # username + password works too
    assert api.util_get_model_names() == ["demo", "other"]
    api.util_set_model("other")
    assert api.util_get_current_model() == "other"
    assert api.get_options()["sd_model_checkpoint"] == "other"
    assert [x["name"] for x in api.get_loras()] == ["demo-warm"]
    assert "Euler a" in api.util_get_sampler_names()
    assert "karras" in [s["name"] for s in api.get_schedulers()]
    api.set_options({"sd_model_checkpoint": "demo", "CLIP_stop_at_last_layers": 2})
    assert api.get_options()["CLIP_stop_at_last_layers"] == 2


def test_webuiapi_png_info_reads_an_atelier_image(world):
    api = _webui(world)
    image = api.txt2img(prompt="a kite", seed=77, steps=2, width=64, height=64).image
    result = api.png_info(image)
    assert "Seed: 77" in result.info
    assert result.parameters["Prompt"] == "a kite"
    assert result.parameters["Seed"] == "77" and result.parameters["Size-1"] == "64"


def test_webuiapi_wrong_password_is_refused(world):
    api = _webui(world, secret="wrong")
    with pytest.raises(RuntimeError) as info:  # webuiapi raises for a non-200 generation
        api.txt2img(prompt="a kite")
    assert info.value.args[0] == 401
    assert api.get_sd_models()["detail"] == "Incorrect username or password"  # GETs return it
    assert Job.objects.count() == 0


# ----------------------------------------------------------------------------- openai
def _openai(world, key=None) -> openai.OpenAI:
    return openai.OpenAI(api_key=key or world["token"], base_url=f"{world['base']}/v1",
                         max_retries=0, timeout=120)


def test_openai_images_generate_both_formats_and_edit(world):
    client = _openai(world)
    b64 = client.images.generate(model="demo", prompt="a kite", size="64x64",
                                 response_format="b64_json")
    image = PILImage.open(io.BytesIO(base64.b64decode(b64.data[0].b64_json)))
    assert image.size == (64, 64)
    by_url = client.images.generate(prompt="a kite", n=2, response_format="url")
    assert len(by_url.data) == 2
    fetched = requests.get(by_url.data[0].url, timeout=30)  # no credentials needed
    assert fetched.status_code == 200
    assert PILImage.open(io.BytesIO(fetched.content)).size == (64, 64)

    src = io.BytesIO()
    PILImage.new("RGBA", (64, 64), (0, 0, 0, 0)).save(src, format="PNG")  # all transparent
    edited = client.images.edit(image=("in.png", src.getvalue(), "image/png"),
                                prompt="fill it", model="demo", response_format="b64_json")
    assert PILImage.open(io.BytesIO(base64.b64decode(edited.data[0].b64_json))).size == (64, 64)
    assert GenerationRequest.objects.filter(kind="inpaint").count() == 1
    assert [m.id for m in client.models.list()] == ["demo"]


def test_openai_errors_raise_the_sdk_exceptions(world):
    with pytest.raises(openai.AuthenticationError):
        _openai(world, key="wrong").images.generate(prompt="a kite")
    with pytest.raises(openai.BadRequestError) as info:
        _openai(world).images.generate(prompt="a kite", size="4096x4096")
    assert info.value.body["param"] == "width"
    assert Job.objects.count() == 0


# ----------------------------------------------------------------------------- websocket
def test_websocket_token_without_origin_gets_the_snapshot(world):
    http = requests.Session()
    http.headers["Authorization"] = f"Token {world['token']}"
    queued = http.post(f"{world['base']}/api/generate/",
                       json={"prompt": "a kite", "steps": 2}).json()
    ws_base = world["base"].replace("http://", "ws://")
    with connect(f"{ws_base}{queued['ws_url']}?token={world['token']}",
                 open_timeout=10) as ws:  # the websockets client sends no Origin
        first = json.loads(ws.recv(timeout=30))
    assert first["type"] == "job" and first["job"]["id"] == queued["job"]


def test_websocket_cookie_session_from_another_origin_is_refused(world):
    from django.test import Client

    browser = Client()
    browser.force_login(world["user"])
    cookie = f"sessionid={browser.cookies['sessionid'].value}"
    ws_base = world["base"].replace("http://", "ws://")
    with pytest.raises(InvalidStatus) as info:
        connect(f"{ws_base}/ws/jobs/", additional_headers={
            "Origin": "http://evil.example", "Cookie": cookie}, open_timeout=10)
    assert info.value.response.status_code == 403
    with pytest.raises(InvalidStatus):  # a cookie alone, without Origin, is no token
        connect(f"{ws_base}/ws/jobs/", additional_headers={"Cookie": cookie}, open_timeout=10)
    with connect(f"{ws_base}/ws/jobs/", additional_headers={  # the same site: accepted
            "Origin": world["base"], "Cookie": cookie}, open_timeout=10) as ws:
        ws.send(json.dumps({"type": "ping"}))
        assert json.loads(ws.recv(timeout=10)) == {"type": "pong"}
