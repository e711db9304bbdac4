#!/usr/bin/env python
"""The fault run of issue 12 outside pytest: what becomes of accepted jobs when a worker, Redis,
PostgreSQL or the web process dies.

    .venv/bin/python bench/faults.py [--scenarios worker_kill,redis_restart,postgres_stop,web_kill]
                                     [--jobs 100] [--workers 2] [--keep DIR]

``--scenarios`` also takes ``worker_freeze``: a worker frozen (SIGSTOP) past its lease while it
writes a generation's files, resumed after another worker finished the job.

One deployment on private services (``tests/reliability/fault_cluster.py``): a PostgreSQL
cluster (``initdb``) and a Redis without persistence on free loopback ports, the web server
(``manage.py serve --no-worker``), ``celery worker`` processes and the job dispatcher
(``manage.py dispatch_jobs``), with 3 s leases; the fake provider ``fake_slow`` (50 ms a step).
The scenarios run in order: (a) SIGKILL a worker mid-generation, (b) accept ``--jobs``
generations with the workers stopped and restart Redis, (c) stop PostgreSQL for 10 s while
jobs run, (d) SIGKILL the web process while clients post (with Idempotency-Key; they retry)
and start it again. After each, it waits until every accepted job ended (at most 120 s after
recovery) and counts; the table shows, per scenario, the accepted jobs, how they ended
(failed by error code), the lost ones, the job rows left queued/running that nobody got a 202
for (stranded), images beyond a request's ``n`` (duplicates), PNG files without a row, and
the seconds from recovery until every job had ended.

Exit status 1 when any job was lost or stranded, an image duplicated or orphaned, or a scenario
did not settle within 120 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", default="worker_kill,redis_restart,postgres_stop,web_kill",
                        help="comma-separated, in order; worker_freeze is a fifth")
    parser.add_argument("--jobs", type=int, default=100,
                        help="generations accepted before the Redis restart")
    parser.add_argument("--workers", type=int, default=2, help="celery worker processes")
    parser.add_argument("--keep", type=Path, default=None,
                        help="a folder for media and logs, kept afterwards")
    args = parser.parse_args()

    import django

    django.setup()  # tests.support.servers.child_env reads the settings
    from tests.reliability.fault_cluster import SCENARIOS, census, fault_cluster, table

    names = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; known: {', '.join(SCENARIOS)}")
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="atelier-faults-"))
    started = time.monotonic()
    rows, outcomes = [], []
    with fault_cluster(workdir, workers=args.workers) as cluster:
        print(f"cluster up in {time.monotonic() - started:.1f}s"
              + (f" (logs: {cluster.logs})" if args.keep else ""), flush=True)
        for name in names:
            kwargs = {"jobs": args.jobs} if name == "redis_restart" else {}
            outcome = cluster.settle(SCENARIOS[name](cluster, **kwargs))
            outcomes.append(outcome)
            counts = census(cluster, [outcome])
            rows.append((outcome.scenario, counts))
            notes = {k: v for k, v in outcome.notes.items() if k != "restarted_at"}
            print(f"{outcome.scenario}: settled in {counts['settle_seconds']}s; rerun "
                  f"{counts['rerun']}, refused {dict(counts['refused'])}; {notes}", flush=True)
        whole = census(cluster, outcomes)
    rows.append(("all", whole))
    print()
    print(table(rows))
    print(f"\nPNG files {whole['png_files']}, Image rows {whole['image_rows']}, missing files "
          f"{whole['missing_files']}, requests short of n images {whole['missing']}; "
          f"{time.monotonic() - started:.0f}s in all")
    if args.keep is None:
        shutil.rmtree(workdir, ignore_errors=True)
    bad = (whole["lost"] or whole["stranded"] or whole["duplicates"] or whole["missing"]
           or whole["orphan_files"] or whole["missing_files"] or whole["settle_seconds"] is None)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
