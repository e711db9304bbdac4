"""Safe by default (issue #12): DEBUG off and a per-install secret key for `make run`'s
settings, error pages without internals, public project counts and covers only from readable
images, no absolute server path to non-staff users, WebSocket frames that are not JSON objects
closed with 1003."""

import json
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from core.redact import redact_paths
from tests.factories import ImageFactory, ModelProfileFactory, UserFactory

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ make run's settings
def _local_settings(tmp_path, **env):
    code = ("import django, json; django.setup(); from django.conf import settings as s; "
            "print(json.dumps([s.DEBUG, s.SECRET_KEY, s.ALLOWED_HOSTS]))")
    base = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    child_env = {**base, "DJANGO_SETTINGS_MODULE": "config.settings.local",
                 "ATELIER_VAR_DIR": str(tmp_path), **env}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=180, env=child_env)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_make_run_settings_are_safe_by_default(tmp_path):
    debug, key, hosts = _local_settings(tmp_path)
    assert debug is False
    stored = tmp_path / "secret_key"
    assert stored.read_text().strip() == key and len(key) >= 50
    assert "insecure" not in key
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert {"localhost", "127.0.0.1"} <= set(hosts)
    # Generated once: the next start reads the same key.
    assert _local_settings(tmp_path)[1] == key
    # Another install gets another key.
    other = tmp_path / "other"
    other.mkdir()
    assert _local_settings(other)[1] != key


def test_debug_and_key_only_when_asked(tmp_path):
    debug, key, _ = _local_settings(tmp_path, DEBUG="1", DJANGO_SECRET_KEY="k" * 60)
    assert debug is True and key == "k" * 60
    assert not (tmp_path / "secret_key").exists()


# ------------------------------------------------------------------ error pages
@pytest.mark.django_db
def test_unknown_api_url_is_json_404_without_url_patterns():
    resp = Client().get("/api/no-such-thing/")
    assert resp.status_code == 404
    assert resp.json() == {"code": "not_found", "message": "Not found."}


@pytest.mark.django_db
def test_unknown_page_is_the_404_page_without_url_patterns():
    resp = Client().get("/no-such-page/")
    assert resp.status_code == 404
    text = resp.content.decode()
    assert "Page not found" in text and "Atelier" in text
    for leak in ("URLconf", "api/auth/token", "admin/", "Traceback", "DEBUG"):
        assert leak not in text, leak


@pytest.mark.django_db
@pytest.mark.urls("tests.security.urls_boom")
def test_server_errors_show_no_internals():
    client = Client(raise_request_exception=False)
    page = client.get("/boom/")
    assert page.status_code == 500
    assert b"Something went wrong" in page.content
    assert b"/srv/atelier" not in page.content and b"RuntimeError" not in page.content
    api = client.get("/api/boom/")
    assert api.status_code == 500
    assert api.json() == {"code": "internal_error",
                          "message": "An unexpected error occurred; it has been logged."}


# ------------------------------------------------------------------ public projects
@pytest.mark.django_db
def test_public_project_counts_and_cover_only_readable_images():
    from images.models import Project

    owner, viewer = UserFactory(username="owner"), UserFactory(username="viewer")
    private = ImageFactory(user=owner, is_public=False)
    public = ImageFactory(user=owner, is_public=True)
    ImageFactory(user=owner, is_public=False)
    project = Project.objects.create(owner=owner, name="Coast", is_public=True, cover=private)
    for image in Project.objects.get(pk=project.pk).owner.images.all():
        image.project = project
        image.save(update_fields=["project"])

    def seen_by(user):
        rows = _forced(user).get("/api/image-projects/").json()["results"]
        return next(r for r in rows if r["id"] == project.pk)

    row = seen_by(viewer)
    assert row["image_count"] == 1, row
    assert row["cover"] is None and row["cover_thumbnail_url"] is None, row
    detail = _forced(viewer).get(f"/api/image-projects/{project.pk}/").json()
    assert detail["image_count"] == 1 and detail["cover"] is None, detail
    mine = seen_by(owner)
    assert mine["image_count"] == 3 and mine["cover"] == private.pk
    # A public cover is shown to everyone.
    project.cover = public
    project.save(update_fields=["cover"])
    assert seen_by(viewer)["cover"] == public.pk


def _forced(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


# ------------------------------------------------------------------ server paths
def test_redact_paths_keeps_names_only():
    assert redact_paths("/srv/models/sd15/model.safetensors: bad header") == \
        "model.safetensors: bad header"
    assert redact_paths("[Errno 2] No such file or directory: '/home/me/x/unet'") == \
        "[Errno 2] No such file or directory: 'unet'"
    assert redact_paths(r"C:\Users\me\lora.safetensors failed") == "lora.safetensors failed"
    for kept in ("see https://civitai.com/models/1/x", "a/b/c relative", "50/50 odds", "",
                 "no paths here"):
        assert redact_paths(kept) == kept
    assert redact_paths(None) is None


@pytest.mark.django_db
def test_model_profiles_show_no_server_path_to_non_staff():
    ModelProfileFactory(slug="local", model_path="/srv/atelier/var/models/demo-sd-tiny",
                        options={"vae": "/srv/atelier/var/models/vae/x.safetensors",
                                 "steps": 4})
    user, staff = UserFactory(username="plain"), UserFactory(username="boss", is_staff=True)
    listing = _forced(user).get("/api/model-profiles/").json()
    rows = listing["results"] if isinstance(listing, dict) else listing
    row = next(r for r in rows if r["slug"] == "local")
    assert row["model_path"] == "demo-sd-tiny"
    assert row["options"] == {"vae": "x.safetensors", "steps": 4}
    assert "/srv" not in json.dumps(_forced(user).get("/api/model-profiles/local/").json())
    full = _forced(staff).get("/api/model-profiles/local/").json()
    assert full["model_path"] == "/srv/atelier/var/models/demo-sd-tiny"


@pytest.mark.django_db
def test_local_model_list_shows_no_server_path_to_non_staff(settings, tmp_path):
    folder = tmp_path / "models" / "my-model"
    folder.mkdir(parents=True)
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    settings.MODELS_DIR = tmp_path / "models"
    user, staff = UserFactory(username="plain2"), UserFactory(username="boss2", is_staff=True)
    from django.core.cache import cache

    cache.clear()  # the model list is cached briefly
    plain = json.dumps(_forced(user).get("/api/providers/models/").json())
    assert "my-model" in plain and str(tmp_path) not in plain
    # Staff may ask for a fresh list (refresh) and see the real path.
    assert str(folder) in json.dumps(_forced(staff).get("/api/providers/models/?refresh=1").json())


# ------------------------------------------------------------------ WebSocket frames
HEADERS = [(b"origin", b"http://localhost"), (b"host", b"localhost")]


@database_sync_to_async
def _token_key():
    return Token.objects.create(user=UserFactory(username="ws-user")).key


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("frame", [{"text_data": "not json"}, {"text_data": "[1, 2]"},
                                   {"text_data": "42"}, {"text_data": '"ping"'},
                                   {"bytes_data": b"\x00\x01"}])
async def test_frames_that_are_not_json_objects_close_1003(frame, caplog):
    from config.asgi import application

    key = await _token_key()
    comm = WebsocketCommunicator(application, f"/ws/jobs/?token={key}", headers=HEADERS)
    connected, _ = await comm.connect(timeout=5)
    assert connected
    with caplog.at_level(logging.WARNING):
        await comm.send_to(**frame)
        closed = await comm.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": 1003}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    await comm.wait()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_json_object_frame_still_works():
    from config.asgi import application

    key = await _token_key()
    comm = WebsocketCommunicator(application, f"/ws/jobs/?token={key}", headers=HEADERS)
    assert (await comm.connect(timeout=5))[0]
    await comm.send_json_to({"type": "ping"})
    assert await comm.receive_json_from(timeout=5) == {"type": "pong"}
    await comm.disconnect()


@database_sync_to_async
def _failed_job_for(username, *, staff=False):
    from tests.factories import JobFactory

    user = UserFactory(username=username, is_staff=staff)
    job = JobFactory(user=user, status="failed", error_code="internal_error",
                     error_message="No such file: '/srv/atelier/var/models/sd15/unet/x.bin'",
                     message="loading /srv/atelier/var/models/sd15")
    return job.pk, Token.objects.create(user=user).key


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("staff", [False, True])
async def test_websocket_job_errors_show_no_server_path_to_non_staff(staff):
    from config.asgi import application

    job_id, key = await _failed_job_for(f"ws-err-{staff}", staff=staff)
    comm = WebsocketCommunicator(application, f"/ws/jobs/{job_id}/?token={key}",
                                 headers=HEADERS)
    assert (await comm.connect(timeout=5))[0]
    job = (await comm.receive_json_from(timeout=5))["job"]
    await comm.disconnect()
    if staff:
        assert "/srv/atelier/var/models/sd15/unet/x.bin" in job["error"]["message"]
    else:
        assert job["error"] == {"code": "internal_error", "message": "No such file: 'x.bin'"}
        assert job["message"] == "loading sd15"
