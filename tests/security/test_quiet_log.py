"""The server log stays readable (issue #12): a real diffusers generation through the server
prints no progress bar, no diffusers/transformers chatter and no torchvision warning; each 4xx
is one line; SIGTERM then stops it cleanly."""

import re
import signal
import subprocess
import sys
import time

import pytest
import requests

from tests.factories import ModelProfileFactory, UserFactory
from tests.support.servers import ROOT, child_env, free_port, wait_for_port

pytestmark = pytest.mark.django_db(transaction=True)
NOISE = re.compile(r"it/s|s/it|\d+%\||Loading pipeline components|Loading checkpoint shards|"
                   r"torchvision|FutureWarning|UserWarning|Traceback")


@pytest.fixture(scope="module")
def demo_model(tmp_path_factory):
    from providers.demo import build_demo_model

    return build_demo_model(tmp_path_factory.mktemp("quiet-models") / "demo-sd-tiny")


def test_generation_leaves_a_quiet_log(settings, demo_model, tmp_path):
    UserFactory(username="quiet")
    ModelProfileFactory(slug="demo", name="Demo", provider="diffusers_local",
                        pipeline_type="sd", model_path=str(demo_model))
    port = free_port()
    env = child_env(media_root=settings.MEDIA_ROOT, embedded=True,
                    extra={"LOG_LEVEL": "INFO", "DIFFUSERS_PREVIEW_EVERY": "0"})
    proc = subprocess.Popen([sys.executable, "manage.py", "serve", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_port(port, proc)
        base = f"http://127.0.0.1:{port}"
        http = requests.Session()
        token = http.post(f"{base}/api/auth/token/", json={"username": "quiet",
                                                           "password": "pw-123456"}).json()
        http.headers["Authorization"] = f"Token {token['token']}"
        assert http.get(f"{base}/api/images/987654321/").status_code == 404
        resp = http.post(f"{base}/api/generate/", json={
            "prompt": "a quiet harbour", "model": "demo", "width": 64, "height": 64,
            "steps": 3, "seed": 7})
        assert resp.status_code == 202, resp.text
        status_url = resp.json()["status_url"]
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            state = http.get(f"{base}{status_url}").json()
            status = state.get("status") or state.get("job", {}).get("status")
            if status in ("succeeded", "failed", "canceled"):
                break
            time.sleep(0.5)
        assert status == "succeeded", state
    finally:
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        stop_seconds = time.monotonic() - started
        output = proc.stdout.read()
    assert proc.returncode == 0 and stop_seconds < 10, (proc.returncode, stop_seconds, output)
    noise = [line for line in output.splitlines() if NOISE.search(line)]
    assert not noise, output[-4000:]
    assert sum("987654321" in line for line in output.splitlines()) == 1, output[-4000:]
