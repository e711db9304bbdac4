"""A whole deployment on private services, and the faults the acceptance of issue 12 names.

:class:`FaultCluster` runs a private PostgreSQL cluster, a private Redis without persistence
(``--save "" --appendonly no``), the web server (``manage.py serve --no-worker``), ``celery
worker`` processes and the job dispatcher (``manage.py dispatch_jobs``), every process with the
short leases of ``LEASE_ENV``; results are read straight from PostgreSQL. The scenarios
(:data:`SCENARIOS`) each accept generations through the real API (fake provider
``fake_slow``, 50 ms a step), inject one fault, and return the accepted job ids and the moment
the fault ended; :func:`census` then counts what became of every job and every image file.

Used by ``tests/reliability/test_fault_suite.py`` (asserts) and ``bench/faults.py`` (a table).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import redis
import requests

from tests.support.servers import ROOT, child_env
from tests.support.services import PrivatePostgres, PrivateRedis, wait_until

from .processes import ChildProcess, ServerProcess, start_dispatcher, start_worker

FINISHED = ("succeeded", "failed", "canceled")
SETTLE_LIMIT = 120.0  # seconds after recovery by which every accepted job must have ended
USER, PASSWORD = "faulty", "pw-123456"
SEED = f"""
from django.core.management import call_command
call_command("migrate", interactive=False, verbosity=0)
from tests.factories import ModelProfileFactory, UserFactory
UserFactory(username="{USER}")
ModelProfileFactory(slug="slow", provider="fake_slow", pipeline_type="fake")
"""


@dataclass
class Outcome:
    """What one scenario did: the jobs it got a 202 for, the answers that were not a 202
    (status code, or the exception's name), when the fault ended (``time.monotonic()``), and
    how long its jobs took to end after that (``None``: not within the limit)."""

    scenario: str
    accepted: list[str] = field(default_factory=list)
    refused: Counter = field(default_factory=Counter)
    recovered_at: float = 0.0
    settle_seconds: float | None = None
    notes: dict = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class FaultCluster:
    """The deployment; see the module doc. ``workdir`` gets ``media/`` and ``logs/``."""

    def __init__(self, workdir: Path, *, workers: int = 2):
        self.workdir = Path(workdir)
        self.media = self.workdir / "media"
        self.logs = self.workdir / "logs"
        self.media.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        self.worker_count = workers
        self.pg = PrivatePostgres()
        self.redis = PrivateRedis()
        self.env: dict = {}
        self.db_url = ""
        self.workers: dict[str, ChildProcess] = {}
        self.dispatcher: ChildProcess | None = None
        self.server: ServerProcess | None = None
        self._names = 0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FaultCluster:
        self.pg.init()
        self.pg.start()
        self.db_url = self.pg.createdb("atelier_faults")
        self.env = {"DATABASE_URL": self.db_url}
        seeded = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", SEED], cwd=ROOT, capture_output=True,
            text=True, timeout=300,
            env=child_env(media_root=str(self.media), embedded=False, extra=self.env))
        if seeded.returncode:
            raise RuntimeError(f"migrate/seed failed:\n{seeded.stderr[-3000:]}")
        self.redis.start()
        self.dispatcher = start_dispatcher(media_root=str(self.media),
                                           redis_url=self.redis.url, log_dir=self.logs,
                                           extra_env=self.env)
        self.server = ServerProcess(media_root=str(self.media), redis_url=self.redis.url,
                                    log_dir=self.logs, extra_env=self.env)
        self.start_workers()
        self.server.start()
        return self

    def close(self) -> None:
        for child in [*self.workers.values(), self.dispatcher]:
            if child is not None:
                child.stop(timeout=10)
        if self.server is not None:
            self.server.stop()
        self.redis.stop()
        self.pg.destroy()

    def start_workers(self) -> None:
        """Start workers until :attr:`worker_count` run (names ``w1``, ``w2``...)."""
        while len(self.workers) < self.worker_count:
            self._names += 1
            name = f"w{self._names}"
            self.workers[name] = start_worker(
                media_root=str(self.media), redis_url=self.redis.url, log_dir=self.logs,
                name=name, extra_env=self.env)

    def stop_workers(self) -> None:
        """Warm shutdown of every worker (running tasks finish first)."""
        for worker in self.workers.values():
            worker.proc.terminate()
        for worker in self.workers.values():
            worker.stop(timeout=30)
        self.workers.clear()

    # ------------------------------------------------------------------ reading and posting
    def rows(self, sql: str, params=()) -> list[tuple] | None:
        """The rows of ``sql`` on the cluster's database, or ``None`` while it is down."""
        try:
            with psycopg.connect(self.db_url, connect_timeout=2) as conn:
                return conn.execute(sql, params).fetchall()
        except psycopg.OperationalError:
            return None

    def session(self) -> requests.Session:
        """A ``requests`` session with a fresh API token of the test user."""
        http = requests.Session()
        token = http.post(f"{self.server.base}/api/auth/token/", timeout=30,
                          json={"username": USER, "password": PASSWORD})
        token.raise_for_status()
        http.headers["Authorization"] = f"Token {token.json()['token']}"
        return http

    def generate(self, http: requests.Session, outcome: Outcome, *, steps: int = 10,
                 n: int = 1, key: str = "", size: int = 64) -> requests.Response:
        """POST one generation (with ``key``, the prompt is the key: a retry sends the same
        body); a 202 adds its job to ``outcome.accepted``, anything else counts in
        ``outcome.refused``. Connection errors propagate."""
        headers = {"Idempotency-Key": key} if key else {}
        resp = http.post(f"{self.server.base}/api/generate/", timeout=30, headers=headers,
                         json={"prompt": f"fault {key or uuid.uuid4().hex[:8]}",
                               "model": "slow", "steps": steps, "n": n, "seed": 7,
                               "width": size, "height": size})
        with outcome.lock:
            if resp.status_code == 202:
                outcome.accepted.append(resp.json()["job"])
            else:
                outcome.refused[resp.status_code] += 1
        return resp

    def running_on(self, worker: ChildProcess) -> list[tuple]:
        """``(job id, step)`` of the jobs a pool child of ``worker`` holds the lease of."""
        children = subprocess.run(["pgrep", "-P", str(worker.pid)], capture_output=True,
                                  text=True).stdout.split()
        rows = self.rows("SELECT id, step, worker FROM jobs_job WHERE status = 'running'") or []
        return [(str(pk), step) for pk, step, token in rows
                if token.split(":")[1:2] and token.split(":")[1] in children]

    def settle(self, outcome: Outcome, *, limit: float = SETTLE_LIMIT) -> Outcome:
        """Wait until every job of ``outcome`` ended, at most ``limit`` seconds after
        ``outcome.recovered_at``; record the seconds it took (``None`` when it did not)."""
        ids = list(dict.fromkeys(outcome.accepted))
        while time.monotonic() - outcome.recovered_at < limit:
            left = self.rows("SELECT count(*) FROM jobs_job WHERE id::text = ANY(%s) "
                             "AND status IN ('succeeded', 'failed', 'canceled')", [ids])
            if left is not None and left[0][0] == len(ids):
                outcome.settle_seconds = round(time.monotonic() - outcome.recovered_at, 1)
                return outcome
            time.sleep(0.25)
        return outcome


# ---------------------------------------------------------------------------------- scenarios
def scenario_worker_kill(cluster: FaultCluster, *, jobs: int = 6) -> Outcome:
    """(a) SIGKILL a whole worker (and its pool child) mid-generation; a supervisor starts a
    new one at once. The dead worker's job comes back through the dispatcher (lease)."""
    outcome = Outcome("worker SIGKILL")
    http = cluster.session()
    for _ in range(jobs):
        cluster.generate(http, outcome, steps=40)
    name, worker = next(iter(cluster.workers.items()))
    victims = wait_until(lambda: [j for j in cluster.running_on(worker) if j[1] >= 5],
                    timeout=60, what=f"a job at step 5 on {name}")
    worker.kill()
    del cluster.workers[name]
    cluster.start_workers()
    outcome.recovered_at = time.monotonic()
    outcome.notes["killed_job"] = victims[0][0]
    return outcome


def scenario_redis_restart(cluster: FaultCluster, *, jobs: int = 100) -> Outcome:
    """(b) With the workers stopped, accept ``jobs`` generations (every tenth with ``n=2``),
    then restart the non-persistent Redis: every message is gone. Workers come back; the
    dispatcher publishes the lost tasks again (each job's ``published_at`` is then later
    than ``notes["restarted_at"]``)."""
    outcome = Outcome("Redis restart")
    cluster.stop_workers()
    sessions = [cluster.session() for _ in range(4)]
    threads = [threading.Thread(target=lambda http=http, k=k: [
        cluster.generate(http, outcome, n=2 if i % 10 == 0 else 1)
        for i in range(k, jobs, len(sessions))]) for k, http in enumerate(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    broker = redis.Redis.from_url(cluster.redis.url)
    outcome.notes["messages_before"] = broker.llen("default")
    run_id = broker.info("server")["run_id"]
    cluster.redis.stop()
    cluster.redis.start()
    # A new Redis process without persistence: nothing of the old one survived.
    outcome.notes["new_redis"] = (
        redis.Redis.from_url(cluster.redis.url).info("server")["run_id"] != run_id)
    outcome.notes["restarted_at"] = datetime.now(UTC)
    cluster.start_workers()
    outcome.recovered_at = time.monotonic()
    return outcome


def scenario_postgres_stop(cluster: FaultCluster, *, jobs: int = 8,
                           down_seconds: float = 10.0) -> Outcome:
    """(c) Stop PostgreSQL (immediate shutdown: every connection dropped) for
    ``down_seconds`` while generations run, then start it again; right after, the API is
    asked for every job (``notes["api_after_restart"]``: answers by status code)."""
    outcome = Outcome("PostgreSQL stop 10 s")
    http = cluster.session()
    for _ in range(jobs):
        cluster.generate(http, outcome, steps=40)
    wait_until(lambda: (rows := cluster.rows("SELECT count(*) FROM jobs_job WHERE status = "
                                        "'running' AND step >= 3")) and rows[0][0] >= 1,
          timeout=60, what="a generation under way")
    cluster.pg.stop("immediate")
    time.sleep(down_seconds)
    cluster.pg.start()
    outcome.recovered_at = time.monotonic()
    # The web server's pooled connections died with the database: it must serve anyway.
    answers = Counter(http.get(f"{cluster.server.base}/api/jobs/{job}/", timeout=30).status_code
                      for job in outcome.accepted)
    outcome.notes["api_after_restart"] = dict(answers)
    return outcome


def scenario_web_kill(cluster: FaultCluster, *, clients: int = 4, kill_after: float = 2.0,
                      after_restart: float = 2.0) -> Outcome:
    """(d) ``clients`` threads post generations one after another, each with its own
    ``Idempotency-Key``; the web process is SIGKILLed while they do and started again on the
    same port. A client whose request got no answer sends it again, same key, until it gets
    one; the clients stop ``after_restart`` seconds after the server is back."""
    outcome = Outcome("web process SIGKILL")
    sessions = [cluster.session() for _ in range(clients)]
    retried = Counter()
    stop = threading.Event()

    def client(http: requests.Session):
        while not stop.is_set():
            key = uuid.uuid4().hex
            deadline = time.monotonic() + 90
            while True:
                try:
                    cluster.generate(http, outcome, key=key)
                    break
                except requests.RequestException as exc:
                    with outcome.lock:
                        retried[type(exc).__name__] += 1
                        if time.monotonic() > deadline:
                            outcome.refused[type(exc).__name__] += 1
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.2)

    threads = [threading.Thread(target=client, args=(http,)) for http in sessions]
    for thread in threads:
        thread.start()
    time.sleep(kill_after)
    outcome.notes["accepted_before_kill"] = len(outcome.accepted)
    cluster.server.kill()
    cluster.server.start()
    outcome.recovered_at = time.monotonic()
    time.sleep(after_restart)
    stop.set()
    for thread in threads:
        thread.join()
    outcome.notes["client_retries"] = dict(retried)
    # A retry answered with the job its lost first try had created (Idempotency-Key).
    outcome.notes["replayed"] = len(outcome.accepted) - len(set(outcome.accepted))
    return outcome


def scenario_worker_freeze(cluster: FaultCluster, *, n: int = 8, size: int = 512) -> Outcome:
    """(e) Freeze a worker (SIGSTOP: a paused VM, a swap storm) while it writes the files of
    an ``n``-image generation, for longer than its lease: the dispatcher hands the job to
    another worker, which finishes it. Then the frozen worker resumes (SIGCONT), writes the
    rest of its files, and finds its lease lost: its rows roll back — its files must go too.

    Raises:
        RuntimeError: the freeze missed the file-writing stage (the job had ended).
    """
    outcome = Outcome("worker frozen past its lease")
    http = cluster.session()
    images = cluster.media / "images"
    before = set(images.rglob("*.png"))
    cluster.generate(http, outcome, steps=10, n=n, size=size)
    wait_until(lambda: set(images.rglob("*.png")) - before, timeout=60,
          what="the first file of the generation", interval=0.005)
    for worker in cluster.workers.values():  # all at once: the files are written quickly
        os.killpg(worker.pid, signal.SIGSTOP)
    victim = next((w for w in cluster.workers.values() if cluster.running_on(w)), None)
    for worker in cluster.workers.values():
        if worker is not victim:
            os.killpg(worker.pid, signal.SIGCONT)
    if victim is None:
        raise RuntimeError("the generation ended before its worker could be frozen")
    outcome.notes["files_when_frozen"] = len(set(images.rglob("*.png")) - before)
    outcome.recovered_at = time.monotonic()
    try:
        cluster.settle(outcome, limit=60)  # finished by the other worker meanwhile
    finally:
        os.killpg(victim.pid, signal.SIGCONT)
    # jobs.kernel logs "job <id>: lease lost ..." once the frozen run gave up (files written).
    wait_until(lambda: f"job {outcome.accepted[0]}: lease lost" in victim.output(),
               timeout=60, what="the frozen worker noticing its lost lease")
    outcome.notes["frozen"] = victim.name
    return outcome


SCENARIOS = {"worker_kill": scenario_worker_kill, "redis_restart": scenario_redis_restart,
             "postgres_stop": scenario_postgres_stop, "web_kill": scenario_web_kill,
             "worker_freeze": scenario_worker_freeze}


# ---------------------------------------------------------------------------------- census
def census(cluster: FaultCluster, outcomes: list[Outcome]) -> dict:
    """Count what became of the jobs of ``outcomes`` and of every image in the database.

    Of the accepted jobs (distinct jobs that got a 202): ``accepted``, ``succeeded``,
    ``failed`` (a Counter of error codes), ``canceled``, ``lost`` (not ended), ``rerun`` (ran
    more than once), ``refused`` (answers that were not a 202), ``settle_seconds`` (the
    slowest outcome). Of everything the database and MEDIA_ROOT hold: ``stranded`` (a job
    row nobody got a 202 for, left queued/running/paused), ``duplicates`` (images beyond a
    request's ``n``, or any image of a request that did not succeed), ``missing`` (succeeded
    requests with fewer than ``n`` images), ``orphan_files`` (PNG files without an Image
    row), ``missing_files`` (rows without their file), ``png_files``, ``image_rows``.
    """
    accepted = {job for o in outcomes for job in o.accepted}
    jobs = cluster.rows(
        "SELECT j.id::text, j.status, j.error_code, j.attempts, r.n, "
        "(SELECT count(*) FROM images_image i WHERE i.request_id = r.id) "
        "FROM jobs_job j LEFT JOIN images_generationrequest r ON r.job_id = j.id")
    files = {str(p.relative_to(cluster.media)) for p in (cluster.media / "images").rglob("*.png")}
    rows = {name for (name,) in cluster.rows("SELECT file FROM images_image")}
    by_id = {row[0]: row for row in jobs}
    counts = {"accepted": len(accepted), "succeeded": 0, "failed": Counter(), "canceled": 0,
              "lost": 0, "stranded": 0, "rerun": 0, "duplicates": 0, "missing": 0}
    for job_id in accepted:
        row = by_id.get(job_id)
        if row is None or row[1] not in FINISHED:
            counts["lost"] += 1
        elif row[1] == "failed":
            counts["failed"][row[2]] += 1
        else:
            counts[row[1]] += 1
    for job_id, status, _code, attempts, n, images in jobs:
        if job_id not in accepted and status not in FINISHED:
            counts["stranded"] += 1
        counts["rerun"] += job_id in accepted and attempts > 1
        if n is not None:
            expected = n if status == "succeeded" else 0
            counts["duplicates"] += max(0, images - expected)
            counts["missing"] += status == "succeeded" and images < n
    settled = [o.settle_seconds for o in outcomes]
    counts.update({
        "orphan_files": len(files - rows), "missing_files": len(rows - files),
        "png_files": len(files), "image_rows": len(rows),
        "refused": sum((o.refused for o in outcomes), Counter()),
        "settle_seconds": None if None in settled else max(settled, default=0.0)})
    return counts


COLUMNS = ["accepted", "succeeded", "failed", "canceled", "lost", "stranded", "duplicates",
           "orphan_files", "settle_seconds"]


def table(rows: list[tuple[str, dict]]) -> str:
    """A plain-text table of census counts, one row per scenario (``failed`` by code)."""
    def cell(value) -> str:
        if isinstance(value, Counter):
            return ",".join(f"{k or '?'}:{v}" for k, v in sorted(value.items())) or "0"
        return "-" if value is None else str(value)

    header = ["scenario", *COLUMNS]
    body = [[name, *(cell(counts[c]) for c in COLUMNS)] for name, counts in rows]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True))
                     for r in [header, *body])


@contextlib.contextmanager
def fault_cluster(workdir: Path, *, workers: int = 2):
    """A started :class:`FaultCluster`, closed (every process stopped, the PostgreSQL
    cluster removed) at the end."""
    cluster = FaultCluster(workdir, workers=workers)
    try:
        yield cluster.start()
    finally:
        cluster.close()
        if os.environ.get("ATELIER_TEST_SHOW_SERVER_LOG"):
            for log in sorted(cluster.logs.glob("*.log")):
                print(f"--- {log.name}\n{log.read_text(errors='replace')[-5000:]}")
