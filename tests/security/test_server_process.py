"""The real server process (`manage.py serve`, uvicorn + the embedded worker thread), issue #12:
bodies over the cap are refused before they are read, `make run`'s settings serve static files
and safe error pages with DEBUG off, 4xx are one log line, and SIGTERM at any moment ends the
process within 10 s, with status 0 and no traceback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import websockets.sync.client as ws_client

from tests.support.servers import ROOT, child_env, free_port, wait_for_port

pytestmark = pytest.mark.django_db(transaction=True)
STOP_SECONDS = 10.0
BODY_CAP = 1024 * 1024


def _spawn(tmp_path: Path, *, settings_module: str | None = None, extra: dict | None = None):
    port = free_port()
    env = child_env(media_root=str(tmp_path / "media"), embedded=True, extra=extra)
    if settings_module:
        env["DJANGO_SETTINGS_MODULE"] = settings_module
    proc = subprocess.Popen([sys.executable, "manage.py", "serve", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    return proc, port


def _terminate(proc: subprocess.Popen) -> tuple[int, float, str]:
    """SIGTERM, then (exit status, seconds to exit, everything the process printed)."""
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_SECONDS + 20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return proc.returncode, float("inf"), proc.stdout.read()
    return proc.returncode, time.monotonic() - started, proc.stdout.read()


def _get(url: str, host: str | None = None) -> tuple[int, bytes, dict]:
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def _raw(port: int, head: bytes, body_chunks=(), read_timeout: float = 15.0) -> bytes:
    """Send ``head`` (request line + headers) and then ``body_chunks`` while the server lets
    us; return what the server answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as sock:
        sock.sendall(head)
        try:
            for chunk in body_chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed: that is the point
        data = b""
        try:
            while True:
                part = sock.recv(65536)
                if not part:
                    break
                data += part
                if b"\r\n\r\n" in data and b'"code"' in data:
                    break
        except (TimeoutError, ConnectionResetError):
            pass
        return data


@pytest.fixture(scope="module")
def capped_server(django_db_setup, django_db_blocker, tmp_path_factory):
    with django_db_blocker.unblock():
        proc, port = _spawn(tmp_path_factory.mktemp("capped"),
                            extra={"REQUEST_BODY_MAX_BYTES": str(BODY_CAP)})
        try:
            wait_for_port(port, proc)
            yield port
        finally:
            status, seconds, output = _terminate(proc)
            assert status == 0 and seconds < STOP_SECONDS and "Traceback" not in output, output


# ------------------------------------------------------------------ body cap
def test_an_oversized_content_length_is_refused_without_reading_the_body(capped_server):
    # 300 MB announced, nothing sent: the answer comes from the header alone.
    started = time.monotonic()
    answer = _raw(capped_server, b"POST /api/example-images/import/ HTTP/1.1\r\n"
                                 b"Host: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
                                 b"Content-Length: 314572800\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b'"code": "request_too_large"' in answer
    assert time.monotonic() - started < 10


def test_a_chunked_body_is_cut_off_at_the_cap(capped_server):
    chunk = b"x" * 65536
    body = (b"%x\r\n" % len(chunk) + chunk + b"\r\n" for _ in range(4 * BODY_CAP // len(chunk)))
    answer = _raw(capped_server, b"POST /api/auth/token/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                 b"Content-Type: application/json\r\n"
                                 b"Transfer-Encoding: chunked\r\n\r\n", body)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b"request_too_large" in answer


def test_a_body_under_the_cap_still_works(capped_server):
    request = urllib.request.Request(
        f"http://127.0.0.1:{capped_server}/api/auth/token/", method="POST",
        data=json.dumps({"username": "nobody", "password": "x" * 1000}).encode(),
        headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=30)
    assert err.value.code == 400  # read, parsed and answered by the view


# ------------------------------------------------------------------ make run's settings
def test_make_run_settings_serve_static_and_safe_pages_then_stop_cleanly(tmp_path):
    """config.settings.local as `make run` uses it: DEBUG off, static files served, both
    127.0.0.1 and localhost accepted, an unknown URL lists nothing; one log line per 4xx."""
    var = tmp_path / "var"
    env = {"ATELIER_VAR_DIR": str(var), "DJANGO_SETTINGS_MODULE":
           "config.settings.local", "LORA_ROOTS": str(tmp_path / "loras"), "REDIS_URL": ""}
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    migrate = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT,
                             env={**base, **env}, capture_output=True, text=True, timeout=300)
    assert migrate.returncode == 0, migrate.stderr[-2000:]
    port = free_port()
    proc = subprocess.Popen([sys.executable, "manage.py", "serve", "--port", str(port)],
                            cwd=ROOT, env={**base, **env, "PYTHONUNBUFFERED": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_port(port, proc)
        status, css, headers = _get(f"http://127.0.0.1:{port}/static/atelier.css")
        assert status == 200 and len(css) > 100 and "css" in headers.get("Content-Type", "")
        for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
            assert _get(f"http://127.0.0.1:{port}/accounts/login/", host=host)[0] == 200, host
        status, body, _ = _get(f"http://127.0.0.1:{port}/api/no-such-endpoint/")
        assert status == 404 and json.loads(body)["code"] == "not_found"
        status, body, _ = _get(f"http://127.0.0.1:{port}/no-such-page/")
        assert status == 404 and b"URLconf" not in body and b"api/auth/token" not in body
        assert _get(f"http://127.0.0.1:{port}/accounts/login/", host="evil.example")[0] == 400
    finally:
        status, seconds, output = _terminate(proc)
    assert status == 0 and seconds < STOP_SECONDS, (status, seconds, output[-3000:])
    assert "Traceback" not in output, output[-3000:]
    assert output.count("no-such-endpoint") == 1, output[-3000:]  # one line per 4xx
    assert (var / "secret_key").is_file()


# ------------------------------------------------------------------ SIGTERM
def _assert_clean_stop(proc):
    status, seconds, output = _terminate(proc)
    assert seconds < STOP_SECONDS, (seconds, output[-3000:])
    assert status == 0, (status, output[-3000:])
    assert "Traceback" not in output, output[-3000:]
    return output


def test_sigterm_right_after_the_server_listens(tmp_path):
    proc, port = _spawn(tmp_path)
    wait_for_port(port, proc)
    _assert_clean_stop(proc)


def test_sigterm_after_requests(tmp_path):
    proc, port = _spawn(tmp_path)
    wait_for_port(port, proc)
    assert _get(f"http://127.0.0.1:{port}/accounts/login/")[0] == 200
    assert _get(f"http://127.0.0.1:{port}/api/jobs/")[0] == 401
    _assert_clean_stop(proc)


def test_sigterm_with_an_open_websocket(tmp_path):
    from rest_framework.authtoken.models import Token

    from tests.factories import UserFactory

    key = Token.objects.create(user=UserFactory(username="ws-stop")).key
    proc, port = _spawn(tmp_path)
    wait_for_port(port, proc)
    with ws_client.connect(f"ws://127.0.0.1:{port}/ws/jobs/?token={key}",
                           origin="http://127.0.0.1", open_timeout=20) as conn:
        conn.send(json.dumps({"type": "ping"}))
        assert json.loads(conn.recv(timeout=20)) == {"type": "pong"}
        _assert_clean_stop(proc)


def test_sigterm_while_starting(tmp_path):
    """Before the command installed its handler (Python and Django still loading) the default
    action ends the process at once; afterwards it is a clean stop. Either way: fast, and no
    traceback."""
    for delay in (0.5, 2.5):
        proc, port = _spawn(tmp_path)
        time.sleep(delay)
        status, seconds, output = _terminate(proc)
        assert seconds < STOP_SECONDS, (delay, seconds, output[-3000:])
        assert status in (0, -signal.SIGTERM), (delay, status, output[-3000:])
        assert "Traceback" not in output, (delay, output[-3000:])
