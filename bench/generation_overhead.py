#!/usr/bin/env python
"""Service overhead per generation: N jobs through the real API vs the same pipeline called
directly, both measured in this run on this machine.

    .venv/bin/python bench/generation_overhead.py [--jobs 20] [--steps 4] [--size 64]

Embedded mode (default): one ``manage.py serve`` process (daphne + worker thread, in-memory
broker and channel layer, SQLite). Redis mode (``REDIS_URL`` set, ``DATABASE_URL`` optional):
``serve --no-worker`` plus a ``celery worker`` process. Each API job is timed from the POST to
the final WebSocket event. Two overheads are printed: against the median direct call made in
this process before the server started, and against the pipeline time the worker measured for
that same job (the service's own cost: HTTP, database, queue, files, events). Targets (issue #2):
overhead p50 <= 15 ms embedded, <= 30 ms Redis.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchlib import django_bench_token  # noqa: E402  (bench/ is the script's folder)


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def generate_and_wait(http, ws, base: str, body: dict):
    """POST ``body`` to /api/generate/ and read ``ws`` (a /ws/jobs/ connection) until that
    job's final event; returns ``(response, final snapshot)``. Exits on a failed job."""
    resp = http.post(f"{base}/api/generate/", json=body)
    resp.raise_for_status()
    job_id = resp.json()["job"]
    while True:
        event = json.loads(ws.recv(timeout=120))["job"]
        if event["id"] == job_id and event["status"] in ("succeeded", "failed"):
            break
    if event["status"] != "succeeded":
        raise SystemExit(f"job failed: {event['error']}")
    return resp, event


def wait_port(port, proc, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stdout.read()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit("server did not start")


def phase_times(event, *, t_post):
    """Seconds spent in each phase of one job, from its final snapshot's timestamps."""
    from datetime import datetime

    created, started, finished = (datetime.fromisoformat(event[k])
                                  for k in ("created_at", "started_at", "finished_at"))
    return {"submit (HTTP)": t_post, "queue wait": (started - created).total_seconds(),
            "run + store": (finished - started).total_seconds()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--pool", default="solo", choices=["solo", "prefork", "threads"],
                        help="Celery pool of the worker process in Redis mode (the gpu-worker "
                             "of docker/compose.yml uses solo; prefork measured 17 ms slower)")
    args = parser.parse_args()

    redis_mode = bool(os.environ.get("REDIS_URL"))
    var = Path(tempfile.mkdtemp(prefix="atelier-bench-"))
    env = dict(os.environ, ATELIER_VAR_DIR=str(var), DJANGO_SETTINGS_MODULE="config.settings.local",
               JOB_PROGRESS_MIN_INTERVAL="0.2", LOG_LEVEL="WARNING", ADMIN_USERNAME="bench",
               ADMIN_PASSWORD="bench-password", PYTHONUNBUFFERED="1")
    if not redis_mode:
        env.pop("DATABASE_URL", None)
    elif env.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        from benchlib import sibling_database_url

        env["DATABASE_URL"] = sibling_database_url(env["DATABASE_URL"], "atelier_bench_overhead",
                                                   fresh=True)
    token = django_bench_token(env)
    from django.conf import settings

    # 1. The pipeline called directly, in this process.
    from providers.base import GenerationSpec, ModelSpec, NullSink
    from providers.diffusers_local import DiffusersProvider

    provider = DiffusersProvider()
    spec = GenerationSpec(model=ModelSpec(pipeline_type="sd", model=str(settings.DEMO_MODEL_DIR)),
                          prompt="a lighthouse at dusk", width=args.size, height=args.size,
                          steps=args.steps, guidance_scale=5.0, seed=1)
    for _ in range(args.warmup):
        provider.generate(spec, NullSink())
    direct = []

    for i in range(args.jobs):
        t = time.perf_counter()
        provider.generate(GenerationSpec(**{**spec.__dict__, "seed": i}), NullSink())
        direct.append(time.perf_counter() - t)
    # Free this process's torch threads: OpenMP workers spin after a run and would steal the
    # server's cores on a small machine.
    del provider

    # 2. The same work through the service.
    import requests
    from websockets.sync.client import connect

    port = free_port()
    procs = []
    serve = [sys.executable, "manage.py", "serve", "--port", str(port)]
    if redis_mode:
        serve.append("--no-worker")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "default,gpu,io",
             "--concurrency", "1", "--pool", args.pool, "--loglevel", "WARNING", "--without-mingle",
             "--without-gossip"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL))
    server = subprocess.Popen(serve, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    procs.append(server)
    service, phases, in_worker = [], [], []
    try:
        wait_port(port, server)
        base = f"http://127.0.0.1:{port}"
        http = requests.Session()
        http.headers["Authorization"] = f"Token {token}"
        body = {"prompt": "a lighthouse at dusk", "model": "demo", "width": args.size,
                "height": args.size, "steps": args.steps, "guidance_scale": 5.0}
        with connect(f"ws://127.0.0.1:{port}/ws/jobs/?token={token}",
                     additional_headers={"Origin": base}) as ws:
            for i in range(args.warmup + args.jobs):
                t = time.perf_counter()
                resp, event = generate_and_wait(http, ws, base, {**body, "seed": i})
                elapsed = time.perf_counter() - t
                if i >= args.warmup:
                    service.append(elapsed)
                    in_worker.append(event["result"]["timings"]["generate_seconds"])
                    phases.append(phase_times(event, t_post=resp.elapsed.total_seconds()))
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)

    base_direct = statistics.median(direct)
    overhead = [(s - base_direct) * 1000 for s in service]
    # The same, against the pipeline time measured inside the worker for that very job: what
    # the service adds (HTTP, database, queue, files, events), free of cross-process noise.
    own = [(s - g) * 1000 for s, g in zip(service, in_worker, strict=True)]
    mode = "redis" if redis_mode else "embedded"
    target = 30 if redis_mode else 15
    print(f"mode={mode} jobs={args.jobs} size={args.size}px steps={args.steps}")
    print(f"direct pipeline  : p50 {statistics.median(direct) * 1000:7.1f} ms  "
          f"p95 {pct(direct, 95) * 1000:7.1f} ms")
    print(f"through the API  : p50 {statistics.median(service) * 1000:7.1f} ms  "
          f"p95 {pct(service, 95) * 1000:7.1f} ms")
    print(f"pipeline in worker: p50 {statistics.median(in_worker) * 1000:6.1f} ms  "
          f"p95 {pct(in_worker, 95) * 1000:7.1f} ms")
    print(f"overhead vs direct: p50 {statistics.median(overhead):6.1f} ms  "
          f"p95 {pct(overhead, 95):7.1f} ms")
    print(f"service overhead  : p50 {statistics.median(own):6.1f} ms  "
          f"p95 {pct(own, 95):7.1f} ms  (API time - pipeline time of the same job; "
          f"target p50 <= {target} ms)")
    for name in phases[0]:
        values = [p[name] * 1000 for p in phases]
        print(f"  {name:15}: p50 {statistics.median(values):7.1f} ms  "
              f"p95 {pct(values, 95):7.1f} ms")
    print(f"ratio API/direct : {statistics.median(service) / base_direct:.3f}")


if __name__ == "__main__":
    main()
