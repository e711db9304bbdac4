"""Start the real server (daphne) and real Celery worker processes on the test database."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url() -> str:
    """A DATABASE_URL for the test database this process is using."""
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
    user = s.get("USER") or ""
    auth = f"{user}@" if user else ""
    if user and s.get("PASSWORD"):
        auth = f"{user}:{s['PASSWORD']}@"
    return f"postgres://{auth}{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"


def child_env(*, media_root: str, embedded: bool, extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env.update({
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(),
        "MEDIA_ROOT": media_root,
        "SERVE_MEDIA": "1",
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "WARNING",
    })
    if embedded:
        env["REDIS_URL"] = ""
        env["EMBEDDED_WORKER"] = "1"
    env.update(extra or {})
    return env


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {proc.stdout.read()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


def _stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.stdout.read() if proc.stdout else ""


@contextlib.contextmanager
def start_server(*, media_root: str, embedded: bool, extra_env: dict | None = None):
    """Run ``manage.py serve`` (daphne; embedded worker thread when ``embedded``) and yield
    its base URL."""
    port = free_port()
    env = child_env(media_root=media_root, embedded=embedded, extra=extra_env)
    args = [sys.executable, "manage.py", "serve", "--port", str(port)]
    if not embedded:
        args.append("--no-worker")
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        output = _stop(proc)
        if os.environ.get("ATELIER_TEST_SHOW_SERVER_LOG"):
            print(output)


@contextlib.contextmanager
def start_worker_process(*, media_root: str, queues: str = "default,gpu,io",
                         extra_env: dict | None = None):
    """Run a real ``celery worker`` process (prefork, concurrency 1) on the configured Redis."""
    env = child_env(media_root=media_root, embedded=False, extra=extra_env)
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues,
         "--concurrency", "1", "--loglevel", "WARNING", "--without-mingle", "--without-gossip",
         "-n", f"e2e-{os.getpid()}@%h"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        yield proc
    finally:
        output = _stop(proc)
        if os.environ.get("ATELIER_TEST_SHOW_SERVER_LOG"):
            print(output)
