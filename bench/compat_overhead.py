#!/usr/bin/env python
"""What the A1111 API adds: the same job as an A1111 ``txt2img`` call and through the native
API, both timed in this run on this machine, p50, printed as a ratio (goal <= 1.05x).

    .venv/bin/python bench/compat_overhead.py [--jobs 20] [--steps 4] [--size 64]

One ``manage.py serve`` process in embedded mode (uvicorn + worker thread, in-memory broker
and channel layer, SQLite), the demo model (``manage.py bootstrap``). Same run design as
bench/generation_overhead.py:

- native: ``POST /api/generate/`` until the final WebSocket event of the job (the client then
  has the image's URL); also reported with the PNG downloaded afterwards (the A1111 answer
  carries the image itself);
- A1111: ``POST /sdapi/v1/txt2img`` (HTTP Basic with the API token, ``save_images`` true so the
  job keeps its image as the native one does) until the answer with the base64 PNG.

The two kinds alternate job by job (native, A1111, native, ...) with the same prompt, size,
steps and seed, so drift of the machine hits both alike; ``--warmup`` jobs of each kind are
not counted. The A1111 call waits for its job by reading its status every
``COMPAT_POLL_SECONDS`` (compat/waiting.py): that poll, the body translation and the base64
answer are its extra cost. On a shared, loaded machine the denoising time of the demo model
varies from job to job far more than these costs, so the service overhead of each call (its
time minus the pipeline time its worker measured) is printed too, and the ratio recomputed
at the run's median pipeline time.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchlib import django_bench_token  # noqa: E402
from generation_overhead import (  # noqa: E402
    free_port,
    generate_and_wait,
    pct,
    wait_port,
)


def _job_seconds(snapshot: dict) -> float:
    """Seconds from the job's creation to its end (its snapshot's timestamps)."""
    from datetime import datetime

    created, finished = (datetime.fromisoformat(snapshot[k])
                         for k in ("created_at", "finished_at"))
    return (finished - created).total_seconds()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()

    var = Path(tempfile.mkdtemp(prefix="atelier-bench-compat-"))
    env = dict(os.environ, ATELIER_VAR_DIR=str(var), DJANGO_SETTINGS_MODULE="config.settings.local",
               JOB_PROGRESS_MIN_INTERVAL="0.2", LOG_LEVEL="WARNING", ADMIN_USERNAME="bench",
               ADMIN_PASSWORD="bench-password", PYTHONUNBUFFERED="1", REDIS_URL="",
               THROTTLE_GENERATE_RATE="")
    env.pop("DATABASE_URL", None)
    token = django_bench_token(env)

    import requests
    from websockets.sync.client import connect

    port = free_port()
    server = subprocess.Popen([sys.executable, "manage.py", "serve", "--port", str(port)],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    native, native_dl, a1111, in_worker = [], [], [], {"native": [], "a1111": []}
    outside = {"native": [], "a1111": []}  # call time - (job finished - job created)
    try:
        wait_port(port, server)
        base = f"http://127.0.0.1:{port}"
        http = requests.Session()
        http.headers["Authorization"] = f"Token {token}"
        webui = requests.Session()
        webui.headers["Authorization"] = "Basic " + base64.b64encode(
            f"bench:{token}".encode()).decode()
        body = {"prompt": "a lighthouse at dusk", "model": "demo", "width": args.size,
                "height": args.size, "steps": args.steps, "guidance_scale": 5.0}
        a1111_body = {"prompt": body["prompt"], "width": args.size, "height": args.size,
                      "steps": args.steps, "cfg_scale": 5.0,
                      "override_settings": {"sd_model_checkpoint": "demo"},
                      "save_images": True, "send_images": True}
        with connect(f"ws://127.0.0.1:{port}/ws/jobs/?token={token}") as ws:
            for i in range(args.warmup + args.jobs):
                # native: POST, then the job's final WebSocket event
                t = time.perf_counter()
                _, event = generate_and_wait(http, ws, base, {**body, "seed": i})
                t_native = time.perf_counter() - t
                http.get(base + event["result"]["images"][0]["url"]).raise_for_status()
                t_native_dl = time.perf_counter() - t
                native_worker = event["result"]["timings"]["generate_seconds"]
                native_job = _job_seconds(event)
                # A1111: one POST, the answer carries the image
                t = time.perf_counter()
                resp = webui.post(f"{base}/sdapi/v1/txt2img", json={**a1111_body, "seed": i})
                t_a1111 = time.perf_counter() - t
                if resp.status_code != 200 or len(resp.json()["images"]) != 1:
                    raise SystemExit(f"A1111 call failed: {resp.status_code} {resp.text[:300]}")
                job = json.loads(resp.json()["info"])["job"]
                snapshot = http.get(f"{base}/api/jobs/{job}/").json()
                timings = snapshot["result"]["timings"]
                if i >= args.warmup:
                    native.append(t_native)
                    native_dl.append(t_native_dl)
                    a1111.append(t_a1111)
                    in_worker["native"].append(native_worker)
                    in_worker["a1111"].append(timings["generate_seconds"])
                    outside["native"].append(t_native - native_job)
                    outside["a1111"].append(t_a1111 - _job_seconds(snapshot))
    finally:
        server.terminate()
        server.wait(timeout=30)

    def line(name, values):
        return (f"{name:28}: p50 {statistics.median(values) * 1000:7.1f} ms  "
                f"p95 {pct(values, 95) * 1000:7.1f} ms")

    print(f"mode=embedded jobs={args.jobs} size={args.size}px steps={args.steps} "
          f"poll={os.environ.get('COMPAT_POLL_SECONDS', '0.01 (default)')} s")
    print(line("native POST -> final event", native))
    print(line("native + PNG download", native_dl))
    print(line("A1111 txt2img (with PNG)", a1111))
    print(line("pipeline in worker, native", in_worker["native"]))
    print(line("pipeline in worker, A1111", in_worker["a1111"]))
    own = {kind: [(t - g) * 1000 for t, g in zip(times, in_worker[kind], strict=True)]
           for kind, times in (("native", native), ("a1111", a1111))}
    for kind in own:  # API time - pipeline time of the same job: the service's own cost
        print(f"service overhead, {kind:10}: p50 {statistics.median(own[kind]):7.1f} ms  "
              f"p95 {pct(own[kind], 95):7.1f} ms")
    for kind in outside:  # before the job row exists and after it ended: HTTP, translation,
        # the wait noticing the end (A1111) or the WebSocket event arriving (native)
        print(f"outside the job, {kind:11}: p50 {statistics.median(outside[kind]) * 1000:7.1f} ms")
    extra = [(a - n) * 1000 for a, n in zip(a1111, native, strict=True)]
    print(f"extra per call (paired)     : p50 {statistics.median(extra):7.1f} ms")
    ratio = statistics.median(a1111) / statistics.median(native)
    print(f"ratio A1111/native p50      : {ratio:.3f}  (goal <= 1.05)")
    # The same ratio with each call's pipeline time replaced by the run's median pipeline
    # time: what the ratio is once the noise of a shared machine's denoising is taken out.
    pipeline = statistics.median(in_worker["native"] + in_worker["a1111"])
    steady = (pipeline * 1000 + statistics.median(own["a1111"])) / (
        pipeline * 1000 + statistics.median(own["native"]))
    print(f"ratio at the median pipeline: {steady:.3f}  (pipeline p50 {pipeline * 1000:.1f} ms)")
    print(f"ratio A1111/native+download : "
          f"{statistics.median(a1111) / statistics.median(native_dl):.3f}")


if __name__ == "__main__":
    main()
