"""PostgreSQL restarts (an immediate shutdown: every connection dropped, like a crash) while a
library scan runs in a real worker process.

Everything runs on a private PostgreSQL cluster (``initdb`` + ``pg_ctl`` on a free port) and a
private Redis, so the restart disturbs no other test; the job dispatcher runs as its own process
and every process has the short leases of ``LEASE_ENV``. The scan job must end (failed with its
reason, or succeeded — on its first run or after the dispatcher re-queued it once its lease ran
out), never stay ``running``; a rescan afterwards must leave the library exactly matching the
files on disk.
"""

import contextlib
import os
import subprocess
import sys
import time

import psycopg

from tests.support.lora_files import write_lora
from tests.support.servers import ROOT, child_env
from tests.support.services import private_postgres, wait_until

from .conftest import LEASE_ENV, dispatcher_process, worker_process

FILES = 400
FINISHED = ("succeeded", "failed", "canceled")
START_SCAN = """
from django.contrib.auth import get_user_model
from loras.services.scan import library_scan_start
user, _ = get_user_model().objects.get_or_create(username="scanner", is_staff=True)
print("JOB", library_scan_start(user=user).pk)
"""


def _job(url: str, job_id: str):
    """(status, step, total_steps, error_code, attempts) of the job, or None while the server
    is down."""
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            return conn.execute("SELECT status, step, total_steps, error_code, attempts "
                                "FROM jobs_job WHERE id = %s", [job_id]).fetchone()
    except psycopg.OperationalError:
        return None


def _start_scan(env: dict) -> str:
    out = subprocess.run([sys.executable, "manage.py", "shell", "-c", START_SCAN], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split("JOB", 1)[1].strip()


def _finished(url: str, job_id: str, timeout: float):
    return wait_until(lambda: (row := _job(url, job_id)) and row[0] in FINISHED and row,
                      timeout=timeout, what=f"scan job {job_id} finished", interval=0.2)


def test_postgres_restart_during_a_scan_then_rescan_matches_disk(settings, tmp_path,
                                                                 redis_server):
    library = tmp_path / "library"
    for i in range(FILES):
        write_lora(library / f"set{i % 10}" / f"lora_{i:04d}.safetensors", seed=i, rank=2)
    on_disk = {os.path.relpath(os.path.join(d, f), library)
               for d, _, names in os.walk(library) for f in names}
    assert len(on_disk) == FILES

    with contextlib.ExitStack() as stack:
        pg = stack.enter_context(private_postgres())
        url = pg.createdb("atelier_scan")
        extra = {**LEASE_ENV, "DATABASE_URL": url, "REDIS_URL": redis_server.url,
                 "LORA_ROOTS": str(library), "LORA_TRASH_DIR": str(tmp_path / "trash"),
                 "LORA_SCAN_WORKERS": "1"}
        env = child_env(media_root=settings.MEDIA_ROOT, embedded=False, extra=extra)
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
                       cwd=ROOT, env=env, check=True, timeout=300)
        stack.enter_context(worker_process(
            media_root=settings.MEDIA_ROOT, redis_url=redis_server.url, log_dir=tmp_path,
            name="scanner", queues="io", extra_env=extra))
        stack.enter_context(dispatcher_process(
            media_root=settings.MEDIA_ROOT, redis_url=redis_server.url, log_dir=tmp_path,
            extra_env=extra))

        job_id = _start_scan(env)
        row = wait_until(lambda: (r := _job(url, job_id)) and (r[0] in FINISHED or (
            r[0] == "running" and r[1] >= 20)) and r, timeout=120, what="scan under way",
            interval=0.05)
        assert row[0] == "running", f"the scan ended before the restart: {row}"
        restarted_at = time.monotonic()
        pg.restart("immediate")

        status, step, total, code, attempts = _finished(url, job_id, timeout=90)
        print(f"scan job after the restart: {status} {code or ''} (attempt {attempts}), "
              f"{time.monotonic() - restarted_at:.1f}s")
        assert status in ("failed", "succeeded")
        if status == "failed":  # a clean failure names its reason
            assert code in ("scan_failed", "worker_lost")
        assert time.monotonic() - restarted_at < 60

        second = _start_scan(env)
        status, step, total, code, attempts = _finished(url, second, timeout=180)
        assert status == "succeeded", code

        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT relative_path, status FROM loras_loramodel").fetchall()
            running = conn.execute("SELECT count(*) FROM jobs_job WHERE status IN "
                                   "('queued', 'running')").fetchone()[0]
    present = [path for path, state in rows if state == "present"]
    assert len(present) == len(set(present)) == FILES  # no duplicates, nothing missing
    assert set(present) == on_disk
    assert running == 0
