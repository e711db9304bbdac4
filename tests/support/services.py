"""Private Redis and PostgreSQL servers that a test may stop, kill and restart.

Fault tests never touch the shared services (127.0.0.1:6379 and :5432) other tests use: they
start their own ``redis-server`` and their own PostgreSQL cluster (``initdb`` + ``pg_ctl``) on
free loopback ports, in temporary folders, and remove them afterwards.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from .servers import free_port

PG_BIN = Path(os.environ.get("ATELIER_PG_BIN", "/usr/lib/postgresql/15/bin"))


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_until(predicate, *, timeout: float, what: str, interval: float = 0.1):
    """Poll ``predicate`` until it returns a truthy value (returned) or ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"{what} not reached after {timeout}s")


class PrivateRedis:
    """A ``redis-server`` child process on a fixed free port; :meth:`stop` kills it
    (SIGKILL, like a crash) and :meth:`start` brings it back, empty, on the same port."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_until(lambda: port_open(self.port), timeout=10, what=f"redis on {self.port}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        wait_until(lambda: not port_open(self.port), timeout=10, what="redis stopped")


@contextlib.contextmanager
def private_redis():
    """Yield a running :class:`PrivateRedis`; it is killed at the end."""
    redis = PrivateRedis()
    redis.start()
    try:
        yield redis
    finally:
        redis.stop()


class PrivatePostgres:
    """A throw-away PostgreSQL cluster (``initdb`` in a temporary folder, trust auth on
    loopback) run by ``pg_ctl``.

    The tests run as root and PostgreSQL refuses to run as root, so when this process is root
    the cluster belongs to the ``postgres`` system user and the commands run through
    ``runuser -u postgres``.
    """

    def __init__(self):
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="atelier-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._prefix: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._prefix = ["runuser", "-u", "postgres", "--"]

    def url(self, name: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def _run(self, *args: str) -> None:
        subprocess.run([*self._prefix, *args], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.STDOUT, cwd=self.root)

    def init(self) -> None:
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                  "--auth=trust", "-E", "UTF8", "--locale=C")

    def start(self) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w",
                  "-t", "30", "-o", f"-p {self.port} -c listen_addresses=127.0.0.1 "
                  f"-k {self.root} -c fsync=off -c full_page_writes=off", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: disconnect clients; ``immediate``: like a crash)."""
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self, mode: str = "immediate") -> None:
        self.stop(mode)
        self.start()

    def createdb(self, name: str) -> str:
        self._run(str(PG_BIN / "psql") if (PG_BIN / "psql").exists() else "psql",
                  "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-q",
                  "-c", f'CREATE DATABASE "{name}"')
        return self.url(name)

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def private_postgres():
    """Yield a running :class:`PrivatePostgres`; the cluster is removed at the end."""
    pg = PrivatePostgres()
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        pg.destroy()
