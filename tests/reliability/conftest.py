"""Fixtures of the fault tests: a private Redis they may kill, real Celery worker processes they
may SIGKILL, a real daphne server, an API client.

The database is the test database of the session (a SQLite file shared with the subprocesses in
the plain mode, PostgreSQL ``test_test`` when ``DATABASE_URL`` is set); the broker is always a
private ``redis-server`` so that stopping it never disturbs other tests.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.support.servers import ROOT, child_env
from tests.support.services import private_redis


@pytest.fixture
def redis_server():
    """A private, killable Redis (:class:`tests.support.services.PrivateRedis`)."""
    with private_redis() as redis:
        yield redis


class WorkerProcess:
    """A ``celery worker`` process in its own process group; ``log`` is its output file."""

    def __init__(self, proc: subprocess.Popen, log: Path, name: str):
        self.proc, self.log, self.name = proc, log, name

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL the worker and its pool children at once (a crash, an OOM kill)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        with contextlib.suppress(ProcessLookupError):  # orphaned pool children
            os.killpg(self.proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def worker_process(*, media_root: str, redis_url: str, log_dir: Path, name: str,
                   queues: str = "default,gpu,io", concurrency: int = 1,
                   extra_env: dict | None = None):
    """Run a real prefork ``celery worker`` on ``redis_url``; its node name is
    ``<name>@<host>`` and its INFO log (task ids received/succeeded) goes to a file."""
    env = child_env(media_root=media_root, embedded=False,
                    extra={"REDIS_URL": redis_url, "LOG_LEVEL": "INFO", **(extra_env or {})})
    log = log_dir / f"worker-{name}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues,
             "--concurrency", str(concurrency), "--loglevel", "INFO", "--without-mingle",
             "--without-gossip", "--without-heartbeat", "-n", f"{name}@%h"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    worker = WorkerProcess(proc, log, name)
    try:
        yield worker
    finally:
        worker.stop()
        if os.environ.get("ATELIER_TEST_SHOW_SERVER_LOG"):
            print(worker.output())


class Api:
    """A ``requests`` session logged in with a token against ``base``."""

    def __init__(self, base: str, username: str):
        self.base = base
        self.http = requests.Session()
        token = self.http.post(f"{base}/api/auth/token/", timeout=30,
                               json={"username": username, "password": "pw-123456"})
        token.raise_for_status()
        self.token = token.json()["token"]
        self.http.headers["Authorization"] = f"Token {self.token}"

    def post(self, path: str, **kwargs):
        return self.http.post(f"{self.base}{path}", timeout=kwargs.pop("timeout", 30), **kwargs)

    def get(self, path: str, **kwargs):
        return self.http.get(f"{self.base}{path}", timeout=kwargs.pop("timeout", 30), **kwargs)
