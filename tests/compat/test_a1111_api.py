"""The A1111 API (/sdapi/v1/) in-process, on the fake provider with a real Celery worker:
auth as A1111 clients send it, error shapes, lists, options, progress and the job behind
each call. The real client packages and the diffusers demo model: test_clients.py."""

import base64
import io
import json

import pytest
from PIL import Image as PILImage
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from images.models import GenerationRequest, Image
from jobs.models import Job
from tests.factories import LibraryRootFactory, LoraFactory, ModelProfileFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _basic(username, secret):
    return "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode()


@pytest.fixture
def alice(db):
    user = UserFactory(username="alice")
    return user, Token.objects.create(user=user).key


@pytest.fixture
def client(alice):
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=_basic("alice", alice[1]))
    return c


@pytest.fixture
def profiles(db):
    return (ModelProfileFactory(slug="fake", name="Fake"),
            ModelProfileFactory(slug="other", name="Other model", is_default=False,
                                max_width=128, max_height=128))


def _png_b64(size=(16, 16), mode="RGB", color=(10, 200, 30)) -> str:
    buf = io.BytesIO()
    PILImage.new(mode, size, color).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


# ----------------------------------------------------------------------------- auth
@pytest.mark.parametrize("header", [None, "Basic bm9ib2R5Om5vcGU=", "Bearer wrong", "Basic ???"])
def test_anonymous_and_wrong_credentials_are_401_in_a1111_shape(header, alice, profiles):
    c = APIClient()
    if header:
        c.credentials(HTTP_AUTHORIZATION=header)
    response = c.get("/sdapi/v1/sd-models")
    assert response.status_code == 401
    body = response.json()
    assert set(body) >= {"error", "detail", "body", "errors"}
    assert response["WWW-Authenticate"].startswith("Basic")


def test_basic_with_password_token_and_bearer_work(alice, profiles):
    for header in (_basic("alice", "pw-123456"), _basic("alice", alice[1]),
                   f"Bearer {alice[1]}", f"Token {alice[1]}"):
        c = APIClient()
        c.credentials(HTTP_AUTHORIZATION=header)
        assert c.get("/sdapi/v1/options").status_code == 200, header
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=_basic("mallory", alice[1]))  # someone else's token
    assert c.get("/sdapi/v1/options").status_code == 401


# ----------------------------------------------------------------------------- generation
def test_txt2img_runs_as_a_normal_job_and_answers_like_a1111(client, alice, profiles,
                                                             celery_worker):
    response = client.post("/sdapi/v1/txt2img", {
        "prompt": "a kite", "negative_prompt": "rain", "seed": 7, "steps": 3, "width": 64,
        "height": 32, "cfg_scale": 5, "batch_size": 2, "save_images": True,
        # what webuiapi and SillyTavern also send, ignored as A1111 ignores unknown fields:
        "subseed": -1, "s_tmax": None, "alwayson_scripts": {}, "url": "http://x", "auth": ""},
        format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"images", "parameters", "info"}
    assert len(body["images"]) == 2
    first = PILImage.open(io.BytesIO(base64.b64decode(body["images"][0])))
    assert first.size == (64, 32) and "Seed: 7" in first.text["parameters"]
    info = json.loads(body["info"])
    assert info["all_seeds"] == [7, 8] and info["seed"] == 7
    assert info["infotexts"][0] == first.text["parameters"]
    assert body["parameters"]["prompt"] == "a kite" and body["parameters"]["steps"] == 3
    job = Job.objects.get(pk=info["job"])  # a normal job of alice, with its images kept
    assert job.user == alice[0] and job.kind == "generate" and job.status == "succeeded"
    assert Image.objects.filter(user=alice[0]).count() == 2


def test_send_images_and_save_images_are_honoured(client, alice, profiles, celery_worker):
    response = client.post("/sdapi/v1/txt2img", {"prompt": "a kite", "steps": 1,
                                                 "send_images": False}, format="json")
    assert response.status_code == 200 and response.json()["images"] == []
    # save_images false (A1111's default): the job stays, its images leave the gallery
    assert Job.objects.filter(user=alice[0], status="succeeded").count() == 1
    assert Image.objects.filter(user=alice[0]).count() == 0


def test_checkpoint_and_options_round_trip(client, alice, profiles, celery_worker):
    models = client.get("/sdapi/v1/sd-models").json()
    titles = {m["model_name"]: m["title"] for m in models}
    assert set(titles) == {"fake", "other"}
    assert client.get("/sdapi/v1/options").json()["sd_model_checkpoint"] == titles["fake"]
    assert client.post("/sdapi/v1/options", {"sd_model_checkpoint": titles["other"],
                                             "CLIP_stop_at_last_layers": 2,
                                             "samples_format": "jpg"},
                       format="json").status_code == 200
    options = client.get("/sdapi/v1/options").json()
    assert options["sd_model_checkpoint"] == titles["other"]
    assert options["CLIP_stop_at_last_layers"] == 2
    response = client.post("/sdapi/v1/txt2img", {"prompt": "a kite", "steps": 1},
                           format="json")
    assert response.status_code == 200
    assert GenerationRequest.objects.get().profile.slug == "other"  # the user's default now
    # Open WebUI posts back the whole object it read
    assert client.post("/sdapi/v1/options", options, format="json").status_code == 200
    bad = client.post("/sdapi/v1/options", {"sd_model_checkpoint": "nope [123abc45]"},
                      format="json")
    assert bad.status_code == 400 and bad.json()["code"] == "unknown_model"


@pytest.mark.parametrize("body, field", [
    ({"prompt": "x", "sampler_name": "No Such Sampler"}, "sampler_name"),
    ({"prompt": "x", "width": 4096, "height": 64}, "width"),
    ({"prompt": "x", "override_settings": {"sd_model_checkpoint": "nope"}},
     "override_settings.sd_model_checkpoint"),
    ({"prompt": "x", "steps": "many"}, "steps"),
    ({"prompt": "x <lora:not-in-library:1>"}, "loras"),
])
def test_bad_txt2img_input_is_400_and_queues_nothing(client, profiles, body, field):
    response = client.post("/sdapi/v1/txt2img", body, format="json")
    assert response.status_code == 400, response.content
    data = response.json()
    assert data["error"] and data["detail"] and field in (data.get("fields") or {}), data
    assert Job.objects.count() == 0


@pytest.mark.parametrize("images, field", [
    (["!!!not base64!!!"], "init_images"),
    ([base64.b64encode(b"plain text, not an image").decode()], "init_images"),
])
def test_bad_img2img_input_is_400_and_queues_nothing(client, profiles, images, field):
    response = client.post("/sdapi/v1/img2img", {"prompt": "x", "init_images": images},
                           format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]
    assert Job.objects.count() == 0


def test_img2img_with_a_mask_is_an_inpaint_job(client, alice, profiles, celery_worker):
    mask = _png_b64(size=(32, 32), mode="L", color=255)
    response = client.post("/sdapi/v1/img2img", {
        "prompt": "a kite", "init_images": ["data:image/png;base64," + _png_b64((32, 32))],
        "mask": mask, "mask_blur": 2, "denoising_strength": 0.5, "steps": 4, "width": 32,
        "height": 32, "save_images": True}, format="json")
    assert response.status_code == 200, response.content
    gen = GenerationRequest.objects.get()
    assert gen.kind == "inpaint" and gen.strength == 0.5
    assert response.json()["parameters"].get("init_images") is None  # include_init_images off
    assert len(response.json()["images"]) == 1


def test_extra_single_image_upscales(client, profiles, celery_worker):
    response = client.post("/sdapi/v1/extra-single-image",
                           {"image": _png_b64((16, 8)), "upscaling_resize": 2,
                            "upscaler_1": "Lanczos"}, format="json")
    assert response.status_code == 200, response.content
    out = PILImage.open(io.BytesIO(base64.b64decode(response.json()["image"])))
    assert out.size == (32, 16)


def test_progress_without_a_job_and_interrupt_answer_like_a1111(client, profiles):
    progress = client.get("/sdapi/v1/progress").json()
    assert progress["progress"] == 0 and progress["state"]["job_count"] == 0
    assert client.post("/sdapi/v1/interrupt").json() == {}


def test_progress_reports_my_running_job_only(client, alice, profiles):
    mine = Job.objects.create(kind="generate", user=alice[0], status="running", step=3,
                              total_steps=10, progress=0.3, eta_seconds=1.5, message="Generating")
    Job.objects.create(kind="generate", user=UserFactory(username="bob"), status="running")
    progress = client.get("/sdapi/v1/progress?skip_current_image=true").json()
    assert progress["state"]["job"] == str(mine.pk) and progress["state"]["job_count"] == 1
    assert progress["state"]["sampling_step"] == 3 and progress["state"]["sampling_steps"] == 10
    assert progress["progress"] == 0.3 and progress["eta_relative"] == 1.5
    client.post("/sdapi/v1/interrupt")
    mine.refresh_from_db()
    assert mine.cancel_requested


def test_lists(client, alice, profiles, settings, tmp_path):
    settings.VAE_DIR = str(tmp_path / "VAE")
    (tmp_path / "VAE").mkdir()
    (tmp_path / "VAE" / "blue.safetensors").write_bytes(b"x")
    assert client.get("/sdapi/v1/sd-vae").json() == [{"model_name": "blue.safetensors",
                                                       "filename": "blue.safetensors"}]
    root = LibraryRootFactory(path="/srv/loras")
    LoraFactory(root=root, name="warm", header_metadata={"ss_output_name": "warmStyle"})
    loras = client.get("/sdapi/v1/loras").json()
    assert loras == [{"name": "warm", "alias": "warmStyle", "path": "warm.safetensors",
                      "metadata": {"ss_output_name": "warmStyle"}}]
    samplers = [s["name"] for s in client.get("/sdapi/v1/samplers").json()]
    assert "Euler a" in samplers and "DPM++ 2M" in samplers
    schedulers = client.get("/sdapi/v1/schedulers").json()
    assert {"name": "karras", "label": "Karras"}.items() <= next(
        s for s in schedulers if s["label"] == "Karras").items()
    assert [u["name"] for u in client.get("/sdapi/v1/upscalers").json()][:2] == ["None",
                                                                                 "Lanczos"]
    assert client.get("/sdapi/v1/embeddings").json() == {"loaded": {}, "skipped": {}}
    assert client.get("/sdapi/v1/scripts").json() == {"txt2img": [], "img2img": []}
    assert client.post("/sdapi/v1/refresh-checkpoints").json() is None
    assert client.get("/sdapi/v1/cmd-flags").json()["api"] is True
    assert "total" in client.get("/sdapi/v1/memory").json()["ram"]


def test_idempotency_key_and_throttle_as_on_the_native_api(client, alice, profiles, settings,
                                                           celery_worker):
    from django.core.cache import cache

    body = {"prompt": "a kite", "steps": 1, "seed": 3}
    first = client.post("/sdapi/v1/txt2img", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = client.post("/sdapi/v1/txt2img", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 200
    assert json.loads(first.json()["info"])["job"] == json.loads(again.json()["info"])["job"]
    other = client.post("/sdapi/v1/txt2img", {**body, "prompt": "a boat"}, format="json",
                        HTTP_IDEMPOTENCY_KEY="k-1")
    assert other.status_code == 409 and other.json()["code"] == "idempotency_key_reused"
    assert Job.objects.count() == 1

    cache.clear()
    settings.THROTTLE_GENERATE_RATE = "1/min"
    assert client.post("/sdapi/v1/txt2img", body, format="json").status_code == 200
    limited = client.post("/sdapi/v1/txt2img", body, format="json")
    assert limited.status_code == 429 and int(limited["Retry-After"]) > 0
    assert limited.json()["code"] == "throttled" and limited.json()["error"]
    cache.clear()


def test_failed_basic_passwords_lock_out_with_a_401(alice, profiles, settings):
    settings.AXES_FAILURE_LIMIT = 3
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION=_basic("alice", "wrong"))
    statuses = [bad.get("/sdapi/v1/options").status_code for _ in range(4)]
    assert statuses == [401] * 4
    good = APIClient()
    good.credentials(HTTP_AUTHORIZATION=_basic("alice", "pw-123456"))
    locked = good.get("/sdapi/v1/options")  # the right password, but locked out now
    assert locked.status_code == 401 and "Too many failed" in locked.json()["detail"]
    token = APIClient()  # the API token is no password: not locked out
    token.credentials(HTTP_AUTHORIZATION=_basic("alice", alice[1]))
    assert token.get("/sdapi/v1/options").status_code == 200


def test_password_login_with_a_broken_multipart_body_is_400(alice, profiles):
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=_basic("alice", "wrong"))
    response = c.generic("POST", "/sdapi/v1/txt2img", b'{"prompt": "x"}',
                         content_type="multipart/form-data")  # no boundary
    assert response.status_code == 400 and response.json()["error"]
