"""Concurrent writers on SQLite wait for each other instead of failing with
``sqlite3.OperationalError: database is locked`` (issue #12, item 4).

SQLite starts a plain ``BEGIN`` (deferred) transaction as a reader; the first write then has to
upgrade the lock, and when another connection wrote in between SQLite answers ``SQLITE_BUSY`` at
once, without waiting for the busy timeout. The embedded settings therefore open every
transaction with ``BEGIN IMMEDIATE`` (Django's ``transaction_mode``), so writers queue on the
busy timeout instead. Under PostgreSQL these tests still run and must hold just as well.
"""

from __future__ import annotations

import io
import threading
import time

import pytest
import requests
from django.db import connection
from PIL import Image

from core.exceptions import ApplicationError
from jobs.models import Job
from jobs.services import job_cancel
from loras.services.organize import organize_start
from tests.factories import JobFactory, LibraryRootFactory, LoraFactory, UserFactory
from tests.support.fake_civitai import (  # noqa: F401 - fixtures
    fake_civitai,
    fake_civitai_server,
    safetensors_bytes,
)
from tests.support.servers import start_server

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 20


def _run_threads(count: int, target) -> list[BaseException]:
    """Run ``target(i)`` in ``count`` threads started together; return what they raised."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            target(i)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def test_concurrent_read_then_write_transactions_all_commit():
    """20 threads each cancel their own queued jobs (``job_cancel``: read the row, then write
    it, in one transaction) while creating an organize job: every transaction commits."""
    user = UserFactory(username="writer")
    jobs = [JobFactory(user=user) for _ in range(THREADS * 3)]

    def work(i: int) -> None:
        for job in jobs[i::THREADS]:
            job_cancel(job=job)
        try:
            organize_start(user=user, enqueue=False)
        except ApplicationError as exc:  # 409 (one organize at a time) for all but one thread
            if exc.status != 409:
                raise

    errors = _run_threads(THREADS, work)
    assert not errors, [f"{type(e).__name__}: {e}" for e in errors]
    assert set(Job.objects.filter(kind="test").values_list("status", flat=True)) == {"canceled"}
    assert Job.objects.filter(kind="lora_organize").count() == 1


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (30, 90, 200)).save(buf, "PNG")
    return buf.getvalue()


def _job_id(body) -> str | None:
    """The job id of a 202 answer, whichever shape it has (``job`` id or snapshot, or ``id``)."""
    if not isinstance(body, dict):
        return None
    job = body.get("job")
    if isinstance(job, dict):
        return job.get("id")
    return job if isinstance(job, str) else body.get("id")


def test_embedded_server_under_twenty_concurrent_writers(tmp_path, settings, fake_civitai,
                                                         monkeypatch, capsys):
    """The real embedded server (daphne + worker thread, SQLite by default) takes imports,
    scans, generations, cancels, pause/resume of a download job and auto-organize from 20
    threads at once: no 5xx answer and no 'database is locked' in its log."""
    from rest_framework.authtoken.models import Token

    from tests.factories import ModelProfileFactory

    root_dir = tmp_path / "loras"
    root = LibraryRootFactory(path=str(root_dir))
    loras = [LoraFactory(root=root, name=f"c{i}", folder="" if i % 2 else "sub",
                         content=safetensors_bytes(seed=100 + i), civitai_version_id=700 + i)
             for i in range(6)]
    for i in range(len(loras)):
        fake_civitai.add_version(version_id=700 + i, model_id=9700 + i,
                                 data=safetensors_bytes(seed=100 + i), image_count=2)
    ModelProfileFactory()
    user = UserFactory(username="busy", is_staff=True)
    token = Token.objects.create(user=user).key
    env = {"LORA_ROOTS": str(root_dir), "LORA_TRASH_DIR": str(tmp_path / "trash"),
           "EXAMPLE_IMAGES_ROOT": str(tmp_path / "examples"),
           "EXAMPLE_IMAGES_RETRY_SECONDS": "0", "EXAMPLE_IMAGES_PAGE_SIZE": "2",
           "CIVITAI_BASE_URL": fake_civitai.base_url, "OUTBOUND_ALLOW_PRIVATE": "1",
           "OUTBOUND_ALLOWED_HOSTS": "127.0.0.1", "THROTTLE_GENERATE_RATE": ""}
    monkeypatch.setenv("ATELIER_TEST_SHOW_SERVER_LOG", "1")  # start_server prints its log
    png = _png()
    answers: list[tuple[str, int, str]] = []
    lock = threading.Lock()

    with start_server(media_root=settings.MEDIA_ROOT, embedded=True, extra_env=env) as url:
        def call(session, label, method, path, **kwargs):
            try:
                response = session.request(method, url + path, timeout=60, **kwargs)
            except requests.RequestException as exc:  # a stuck server: reported below
                with lock:
                    answers.append((label, 0, f"{type(exc).__name__}: {exc}"))
                return None
            with lock:
                answers.append((label, response.status_code, response.text[:300]))
            try:
                return response.json()
            except ValueError:
                return None

        def generate(session, i):
            body = call(session, "generate", "POST", "/api/generate/", json={
                "prompt": f"a lighthouse {i}", "model": "fake", "steps": 2,
                "width": 64, "height": 64})
            return _job_id(body)

        def download_pause_resume(session, i):
            body = call(session, "download", "POST", "/api/example-images/download/",
                        json={"limit_per_model": 2})
            job = _job_id(body)
            if job is None:  # 409 download_running: work on the running one
                status = call(session, "download-status", "GET", "/api/example-images/status/")
                job = _job_id(status)
            if job:
                call(session, "pause", "POST", f"/api/jobs/{job}/pause/")
                call(session, "resume", "POST", f"/api/jobs/{job}/resume/")

        ops = [
            lambda s, i: call(s, "import", "POST", "/api/example-images/import/",
                              data={"lora": loras[i % len(loras)].pk},
                              files=[("files", (f"x{i}.png", png, "image/png"))]),
            lambda s, i: call(s, "scan", "POST", "/api/loras/scan/"),
            generate,
            lambda s, i: (job := generate(s, i)) and call(s, "cancel", "POST",
                                                           f"/api/jobs/{job}/cancel/"),
            download_pause_resume,
            lambda s, i: call(s, "organize", "POST", "/api/loras/auto-organize/", json={}),
            lambda s, i: call(s, "patch", "PATCH", f"/api/loras/{loras[i % len(loras)].pk}/",
                              json={"notes": f"note {i}", "favorite": bool(i % 2)}),
        ]

        def worker(i: int) -> None:
            with requests.Session() as session:
                session.headers["Authorization"] = f"Token {token}"
                for round_ in range(len(ops)):
                    ops[(i + round_) % len(ops)](session, i * 10 + round_)

        errors = _run_threads(THREADS, worker)
        # Let the embedded worker finish what was queued, so its writes are in the log too.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and Job.objects.filter(
                status__in=["queued", "running"]).exists():
            time.sleep(0.5)
    log = capsys.readouterr().out

    assert not errors, [f"{type(e).__name__}: {e}" for e in errors]
    locked = log.find("database is locked")
    assert locked < 0, log[max(0, locked - 3000):locked + 200]
    failed = [a for a in answers if a[1] >= 500 or a[1] == 0]
    assert not failed, (len(failed), failed[:5])
    assert len(answers) >= THREADS * len(ops), len(answers)
    assert not Job.objects.filter(error_message__icontains="database is locked").exists()
    assert {label for label, code, _ in answers if 200 <= code < 300} >= {
        "import", "scan", "generate", "download", "organize", "patch"}
