"""`make run`'s one process (core/management/commands/bootstrap.py, docs/first-run.md): it
migrates, creates the admin user and the demo model with a time per phase, serves, and once the
first page has been answered prints the address, a login that works and the next step."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.support.servers import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_bootstrap_phases_admin_and_demo(settings, tmp_path, monkeypatch):
    from django.contrib.auth import get_user_model

    from providers.models import ModelProfile

    monkeypatch.delenv("ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("ADMIN_USERNAME", raising=False)
    settings.DEFAULT_CHECKPOINT = ""
    settings.MODELS_DIR = tmp_path / "models"
    settings.DEMO_MODEL_DIR = settings.MODELS_DIR / "demo-sd-tiny"
    settings.DEMO_LORA_DIR = settings.MODELS_DIR / "loras"
    settings.LORA_ROOTS = [str(settings.DEMO_LORA_DIR)]

    out = io.StringIO()
    call_command("bootstrap", stdout=out)
    text = out.getvalue()
    for phase in ("database migrated", "admin user", "model profile"):
        assert re.search(rf"^\[run\] {phase}: \d+\.\d s$", text, re.MULTILINE), text
    password = re.search(r"with password: (\S+)", text).group(1)
    assert get_user_model().objects.get(username="admin").check_password(password)
    assert ModelProfile.objects.get(slug="demo").is_default
    assert (settings.DEMO_MODEL_DIR / "model_index.json").is_file()

    again = io.StringIO()
    call_command("bootstrap", stdout=again)
    assert "Admin user 'admin' exists." in again.getvalue()
    assert f"demo model already at {settings.DEMO_MODEL_DIR}" in again.getvalue()


def test_make_run_process_says_where_and_how_to_log_in(tmp_path):
    """``manage.py bootstrap --serve`` as `make run` starts it, on a new var folder."""
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL", "ADMIN_PASSWORD",
                        "ADMIN_USERNAME", "MODELS_DIR", "LORA_ROOTS", "MEDIA_ROOT",
                        "ATELIER_CHECKPOINT", "STATIC_ROOT")}
    env.update({"ATELIER_VAR_DIR": str(tmp_path / "var"), "PYTHONUNBUFFERED": "1",
                "RUN_STARTED_AT": f"{time.time():.3f}"})
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "bootstrap", "--serve", "--port", str(port)],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C stops the server" in line:
                break
        text = "".join(lines)
        ready = re.search(r"Atelier is ready: (http://127\.0\.0\.1:\d+/)\s+\(first page "
                          r"(\d+\.\d) s after start\)", text)
        assert ready, text
        assert ready.group(1) == f"http://127.0.0.1:{port}/"
        print(f"first page {ready.group(2)} s after start (tests' database and var folder)")
        login = re.search(r"Log in as 'admin' with password (\S+) \(shown once", text)
        assert login, text
        models = tmp_path / "var" / "models"
        assert "Next: put checkpoints (.safetensors or diffusers folders) in\n" in text
        assert f"        {models / 'Stable-diffusion'} (or CHECKPOINT_ROOTS=...)" in text
        assert "Checkpoints in no existing CHECKPOINT_ROOTS folder: 0 new" in text  # synced
        # The printed login works.
        request = urllib.request.Request(
            f"{ready.group(1)}api/auth/token/", method="POST",
            data=json.dumps({"username": "admin", "password": login.group(1)}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200 and json.loads(response.read())["token"]
        # Served while the banner was printed: the first page answers.
        with urllib.request.urlopen(ready.group(1), timeout=30) as response:
            assert response.status == 200 and b"<form" in response.read()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
