#!/usr/bin/env python
"""Load test: many ``POST /api/generate/`` at once through the real stack, then the list API.

    .venv/bin/python bench/load.py [--requests 500] [--concurrency 50] [--workers 2]
                                   [--list-requests 500] [--timeout 300]

What runs: a private ``redis-server`` on a free port (the broker and channel layer; the shared
Redis is never touched), ``manage.py serve --no-worker`` (daphne, one process) and ``--workers``
``celery worker`` processes (prefork, concurrency 1, every queue), all with the test settings
(``config.settings.test``: the ``fake`` provider, no throttles). Database: when
``DATABASE_URL`` names PostgreSQL, a fresh sibling database ``atelier_load`` on that server
(``bench/benchlib.py``); else a SQLite file in a temporary folder. Media go to a temporary
folder, removed at the end.

Phase 1: ``--requests`` generations (fake provider, 64x64, 4 steps) sent by ``--concurrency``
threads; submit latency per request (p50/p95, ms), then the time until every job finished
(completion throughput, jobs/s, from the first submit to the last ``finished_at``). Zero lost
(every 202 job succeeded) and zero 5xx are required. Phase 2: ``GET /api/images/`` (the
user's images, first page) ``--list-requests`` times by ``--concurrency`` threads: p50/p95 (ms).

Exit status 1 when a request failed (non-2xx), a job was lost, or a job failed.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from benchlib import sibling_database_url  # noqa: E402

from tests.support.servers import free_port, wait_for_port  # noqa: E402
from tests.support.services import PrivateRedis  # noqa: E402

BENCH_DB = "atelier_load"
USER, PASSWORD = "loadtest", "pw-load-123456"


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def run_parallel(fn, count: int, concurrency: int) -> list:
    local = threading.local()

    def call(i):
        if not hasattr(local, "http"):
            local.http = requests.Session()
        return fn(local.http, i)

    with cf.ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(call, range(count)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--list-requests", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for jobs")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="atelier-load-"))
    source = os.environ.get("DATABASE_URL", "")
    if source.startswith("postgres"):
        db_url = sibling_database_url(source, BENCH_DB, fresh=True)
    else:
        db_url = f"sqlite:///{tmp / 'load.sqlite3'}"
    redis = PrivateRedis()
    redis.start()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test",
           "DATABASE_URL": db_url, "REDIS_URL": redis.url, "MEDIA_ROOT": str(tmp / "media"),
           "EMBEDDED_WORKER": "0", "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1",
           "THROTTLE_GENERATE_RATE": "", "THROTTLE_LOGIN_RATE": "",
           "DB_POOL_MAX": str(max(10, args.concurrency // 2))}
    os.environ.update({k: env[k] for k in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL",
                                           "REDIS_URL", "MEDIA_ROOT")})
    procs: list[subprocess.Popen] = []
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
                       cwd=ROOT, env=env, check=True)
        import django

        django.setup()
        from django.contrib.auth import get_user_model

        from jobs.models import Job
        from providers.models import ModelProfile

        get_user_model().objects.create_user(USER, password=PASSWORD)
        ModelProfile.objects.update_or_create(slug="fake", defaults=dict(
            name="Fake", provider="fake", pipeline_type="fake", default_width=64,
            default_height=64, default_steps=4, max_width=512, max_height=512, is_default=True))

        port = free_port()
        logs = open(tmp / "processes.log", "w")
        server = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--no-worker", "--port", str(port)],
            cwd=ROOT, env=env, stdout=logs, stderr=subprocess.STDOUT)
        procs.append(server)
        for i in range(args.workers):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q",
                 "default,gpu,io", "--concurrency", "1", "--loglevel", "WARNING",
                 "--without-mingle", "--without-gossip", "-n", f"load{i}@%h"],
                cwd=ROOT, env=env, stdout=logs, stderr=subprocess.STDOUT))
        wait_for_port(port, server)
        base = f"http://127.0.0.1:{port}"
        token = requests.post(f"{base}/api/auth/token/", timeout=30,
                              json={"username": USER, "password": PASSWORD}).json()["token"]
        headers = {"Authorization": f"Token {token}"}
        time.sleep(2.0)  # let the workers connect to the broker

        def submit(http, i):
            started = time.monotonic()
            try:
                resp = http.post(f"{base}/api/generate/", headers=headers, timeout=60, json={
                    "prompt": f"load test {i}", "model": "fake", "seed": i})
                status, job = resp.status_code, (resp.json().get("job")
                                                 if resp.status_code == 202 else None)
            except requests.RequestException as exc:
                status, job = f"error {type(exc).__name__}", None
            return status, job, time.monotonic() - started

        print(f"== load: {args.requests} POST /api/generate/ at concurrency "
              f"{args.concurrency}, {args.workers} workers, "
              f"{'PostgreSQL' if db_url.startswith('postgres') else 'SQLite'}, Redis")
        t0 = time.monotonic()
        wall0 = time.time()
        results = run_parallel(submit, args.requests, args.concurrency)
        submit_seconds = time.monotonic() - t0
        latencies = [r[2] * 1000 for r in results]
        statuses: dict = {}
        for status, _, _ in results:
            statuses[status] = statuses.get(status, 0) + 1
        accepted = [job for status, job, _ in results if status == 202]
        five_xx = sum(n for s, n in statuses.items() if not isinstance(s, int) or s >= 500)
        print(f"submit: {len(accepted)}/{args.requests} accepted in {submit_seconds:.1f} s; "
              f"statuses {statuses}")
        print(f"submit latency: p50 {pct(latencies, 0.5):.0f} ms, "
              f"p95 {pct(latencies, 0.95):.0f} ms, max {max(latencies):.0f} ms")

        deadline = time.monotonic() + args.timeout
        pending = Job.objects.filter(pk__in=accepted).exclude(
            status__in=[Job.Status.SUCCEEDED, Job.Status.FAILED, Job.Status.CANCELED])
        while pending.exists() and time.monotonic() < deadline:
            time.sleep(0.25)
        jobs = Job.objects.filter(pk__in=accepted)
        by_status: dict = {}
        for status in jobs.values_list("status", flat=True):
            by_status[status] = by_status.get(status, 0) + 1
        succeeded = by_status.get(Job.Status.SUCCEEDED, 0)
        lost = len(accepted) - sum(v for k, v in by_status.items()
                                   if k in (Job.Status.SUCCEEDED, Job.Status.FAILED))
        last = max((j.finished_at for j in jobs if j.finished_at), default=None)
        span = (last.timestamp() - wall0) if last else float("nan")
        print(f"jobs: {by_status}; lost {lost}; all done {span:.1f} s after the first submit "
              f"-> {succeeded / span:.1f} jobs/s completed")

        def list_images(http, i):
            started = time.monotonic()
            try:
                code = http.get(f"{base}/api/images/", headers=headers, timeout=60).status_code
            except requests.RequestException as exc:
                code = f"error {type(exc).__name__}"
            return code, time.monotonic() - started

        t1 = time.monotonic()
        listed = run_parallel(list_images, args.list_requests, args.concurrency)
        list_seconds = time.monotonic() - t1
        list_ms = [r[1] * 1000 for r in listed]
        list_bad = sum(1 for code, _ in listed if code != 200)
        print(f"== list: {args.list_requests} GET /api/images/ ({succeeded} images) at "
              f"concurrency {args.concurrency}: p50 {pct(list_ms, 0.5):.0f} ms, "
              f"p95 {pct(list_ms, 0.95):.0f} ms, {args.list_requests / list_seconds:.0f} req/s, "
              f"non-200: {list_bad}")
        ok = (five_xx == 0 and len(accepted) == args.requests and lost == 0
              and succeeded == len(accepted) and list_bad == 0)
        print(f"RESULT: {'PASS' if ok else 'FAIL'} (zero lost: {lost == 0}, zero 5xx: "
              f"{five_xx == 0}, all succeeded: {succeeded == len(accepted)})")
        if not ok:
            logs.flush()
            print((tmp / "processes.log").read_text()[-4000:])
        return 0 if ok else 1
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=20)
            if proc.poll() is None:
                proc.kill()
        redis.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
