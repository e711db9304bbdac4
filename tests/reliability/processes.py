"""The real processes the fault tests start, stop and kill: ``celery worker``, the job dispatcher
(``manage.py dispatch_jobs``), the web server (``manage.py serve --no-worker``), and an API
client for it.

Every process gets :data:`LEASE_ENV` (short leases, a fast dispatcher) through its environment,
so a job whose worker died is re-queued within seconds, not the production 30 + 10 s.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.support.servers import ROOT, child_env, free_port
from tests.support.services import port_open

# Seconds (see jobs/lease.py and jobs/dispatcher.py; settings JOB_*): a lease of 3 s renewed
# every second, a dispatcher pass every second, a queued job's message looked for after 2 s.
LEASE_SECONDS = 3.0
DISPATCH_INTERVAL = 1.0
LEASE_ENV = {"JOB_LEASE_SECONDS": str(LEASE_SECONDS), "JOB_HEARTBEAT_SECONDS": "1",
             "JOB_REPUBLISH_AFTER_SECONDS": "2", "JOB_DISPATCH_INTERVAL": str(DISPATCH_INTERVAL)}


class ChildProcess:
    """A subprocess in its own process group whose output goes to ``log``."""

    def __init__(self, proc: subprocess.Popen, log: Path, name: str):
        self.proc, self.log, self.name = proc, log, name

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL the process and its children at once (a crash, an OOM kill)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM (a warm shutdown: running tasks finish), SIGKILL after ``timeout`` s."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        with contextlib.suppress(ProcessLookupError):  # orphaned pool children
            os.killpg(self.proc.pid, signal.SIGKILL)


WorkerProcess = ChildProcess  # the name the tests used before the dispatcher came


def _spawn(args: list[str], *, env: dict, log: Path, name: str) -> ChildProcess:
    with open(log, "a") as out:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    return ChildProcess(proc, log, name)


def _env(*, media_root: str, redis_url: str, extra_env: dict | None, log_level: str) -> dict:
    return child_env(media_root=media_root, embedded=False,
                     extra={**LEASE_ENV, "REDIS_URL": redis_url, "LOG_LEVEL": log_level,
                            **(extra_env or {})})


def _show(child: ChildProcess) -> None:
    if os.environ.get("ATELIER_TEST_SHOW_SERVER_LOG"):
        print(child.output())


def start_worker(*, media_root: str, redis_url: str, log_dir: Path, name: str,
                 queues: str = "default,gpu,io", concurrency: int = 1,
                 extra_env: dict | None = None) -> ChildProcess:
    """Start a real prefork ``celery worker`` on ``redis_url`` (node ``<name>@<host>``, INFO
    log with the task ids it received and finished in ``log_dir/worker-<name>.log``)."""
    env = _env(media_root=media_root, redis_url=redis_url, extra_env=extra_env,
               log_level="INFO")
    return _spawn([sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues,
                   "--concurrency", str(concurrency), "--loglevel", "INFO", "--without-mingle",
                   "--without-gossip", "--without-heartbeat", "-n", f"{name}@%h"],
                  env=env, log=log_dir / f"worker-{name}.log", name=name)


@contextlib.contextmanager
def worker_process(*, media_root: str, redis_url: str, log_dir: Path, name: str,
                   queues: str = "default,gpu,io", concurrency: int = 1,
                   extra_env: dict | None = None):
    """:func:`start_worker` for the length of a ``with`` block."""
    worker = start_worker(media_root=media_root, redis_url=redis_url, log_dir=log_dir,
                          name=name, queues=queues, concurrency=concurrency,
                          extra_env=extra_env)
    try:
        yield worker
    finally:
        worker.stop()
        _show(worker)


def start_dispatcher(*, media_root: str, redis_url: str, log_dir: Path,
                     extra_env: dict | None = None) -> ChildProcess:
    """Start the job dispatcher as production runs it: ``manage.py dispatch_jobs`` with a pass
    every :data:`DISPATCH_INTERVAL` seconds (log in ``log_dir/dispatcher.log``)."""
    env = _env(media_root=media_root, redis_url=redis_url, extra_env=extra_env,
               log_level="INFO")
    return _spawn([sys.executable, "manage.py", "dispatch_jobs", "--interval",
                   str(DISPATCH_INTERVAL)], env=env, log=log_dir / "dispatcher.log",
                  name="dispatcher")


@contextlib.contextmanager
def dispatcher_process(*, media_root: str, redis_url: str, log_dir: Path,
                       extra_env: dict | None = None):
    """:func:`start_dispatcher` for the length of a ``with`` block."""
    dispatcher = start_dispatcher(media_root=media_root, redis_url=redis_url, log_dir=log_dir,
                                  extra_env=extra_env)
    try:
        yield dispatcher
    finally:
        dispatcher.stop()
        _show(dispatcher)


class ServerProcess:
    """``manage.py serve --no-worker`` on a fixed port: :meth:`kill` (SIGKILL) and
    :meth:`start` again on the same port, as a supervisor would restart it."""

    def __init__(self, *, media_root: str, redis_url: str, log_dir: Path,
                 extra_env: dict | None = None):
        self.port = free_port()
        self.env = _env(media_root=media_root, redis_url=redis_url, extra_env=extra_env,
                        log_level="WARNING")
        self.log = log_dir / "server.log"
        self.child: ChildProcess | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> str:
        self.child = _spawn([sys.executable, "manage.py", "serve", "--no-worker", "--port",
                             str(self.port)], env=self.env, log=self.log, name="server")
        deadline = time.monotonic() + timeout
        while not port_open(self.port):
            if self.child.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start (exit status "
                                   f"{self.child.proc.poll()}):\n{self.child.output()[-3000:]}")
            time.sleep(0.1)
        return self.base

    def kill(self) -> None:
        self.child.kill()

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()
            _show(self.child)


class Api:
    """A ``requests`` session logged in with a token against ``base``."""

    def __init__(self, base: str, username: str, password: str = "pw-123456"):
        self.base = base
        self.http = requests.Session()
        token = self.http.post(f"{base}/api/auth/token/", timeout=30,
                               json={"username": username, "password": password})
        token.raise_for_status()
        self.token = token.json()["token"]
        self.http.headers["Authorization"] = f"Token {self.token}"

    def post(self, path: str, **kwargs):
        return self.http.post(f"{self.base}{path}", timeout=kwargs.pop("timeout", 30), **kwargs)

    def get(self, path: str, **kwargs):
        return self.http.get(f"{self.base}{path}", timeout=kwargs.pop("timeout", 30), **kwargs)
