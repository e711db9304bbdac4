"""The library follows its folders (loras/watcher.py): real watchdog events on a real folder,
debounced into scan jobs; end to end, a file copied into a root of the running server shows in
the API within 5 s and a removed one is marked missing."""

from __future__ import annotations

import shutil
import threading
import time

import pytest
import requests

from core.exceptions import ApplicationError
from loras.watcher import LibraryWatcher
from tests.factories import UserFactory
from tests.support.lora_files import write_lora
from tests.support.servers import start_server


def _wait(predicate, timeout: float, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


class Counter:
    def __init__(self, fail_first: int = 0, status: int | None = 409):
        self.calls = 0
        self.ok = 0
        self.fail_first = fail_first
        self.status = status
        self.lock = threading.Lock()

    def __call__(self):
        with self.lock:
            self.calls += 1
            if self.calls <= self.fail_first:
                raise ApplicationError("job_running", "A library scan is already running.",
                                       status=self.status)
            self.ok += 1


def test_a_burst_of_writes_starts_one_scan_after_the_quiet_period(tmp_path):
    counter = Counter()
    watcher = LibraryWatcher(roots=[str(tmp_path)], debounce=0.5, rescan_seconds=0,
                             trigger=counter, poll=0.05).start()
    try:
        target = tmp_path / "sub" / "big.safetensors"
        target.parent.mkdir()
        started = time.monotonic()
        with open(target, "wb") as fh:  # a slow copy: many writes, 0.1 s apart
            for _ in range(8):
                fh.write(b"x" * 4096)
                fh.flush()
                time.sleep(0.1)
        assert counter.ok == 0  # still being written: no scan yet
        assert _wait(lambda: counter.ok == 1, 5)
        assert time.monotonic() - started >= 0.8 + 0.5 - 0.05
        time.sleep(1.0)
        assert counter.ok == 1  # one scan for the whole burst
        assert watcher.scans_started == 1
    finally:
        watcher.stop()


def test_temporary_and_hidden_files_start_no_scan(tmp_path):
    counter = Counter()
    watcher = LibraryWatcher(roots=[str(tmp_path)], debounce=0.2, rescan_seconds=0,
                             trigger=counter, poll=0.05).start()
    try:
        (tmp_path / "model.safetensors.part").write_bytes(b"partial")
        (tmp_path / ".hidden").write_bytes(b"x")
        (tmp_path / "download.tmp").write_bytes(b"x")
        time.sleep(1.0)
        assert counter.calls == 0
        (tmp_path / "model.safetensors.part").rename(tmp_path / "model.safetensors")
        assert _wait(lambda: counter.ok == 1, 5)  # the finished download's rename counts
    finally:
        watcher.stop()


def test_a_running_scan_postpones_the_next_one_instead_of_losing_it(tmp_path):
    counter = Counter(fail_first=2)  # 409 job_running twice, then the scan starts
    watcher = LibraryWatcher(roots=[str(tmp_path)], debounce=0.2, rescan_seconds=0,
                             trigger=counter, poll=0.05).start()
    try:
        (tmp_path / "a.safetensors").write_bytes(b"x")
        assert _wait(lambda: counter.ok == 1, 5)
        assert counter.calls == 3
        time.sleep(0.6)
        assert counter.ok == 1 and counter.calls == 3  # done: no endless retries
    finally:
        watcher.stop()


def test_periodic_rescan_without_events(tmp_path):
    counter = Counter()
    watcher = LibraryWatcher(roots=[str(tmp_path)], debounce=0.2, rescan_seconds=0.5,
                             trigger=counter, poll=0.05).start()
    try:
        assert _wait(lambda: counter.ok >= 2, 4)
    finally:
        watcher.stop()


@pytest.mark.django_db(transaction=True)
def test_running_server_picks_up_a_copied_file_and_a_removed_one(settings, tmp_path):
    root = tmp_path / "loras"
    root.mkdir()
    source = write_lora(tmp_path / "outside" / "ink-style.safetensors")
    UserFactory(username="wendy")
    env = {"LORA_ROOTS": str(root), "LIBRARY_WATCH": "1",
           "LIBRARY_WATCH_DEBOUNCE_SECONDS": "0.5"}
    with start_server(media_root=settings.MEDIA_ROOT, embedded=True, extra_env=env) as base:
        http = requests.Session()
        token = http.post(f"{base}/api/auth/token/",
                          json={"username": "wendy", "password": "pw-123456"}).json()["token"]
        http.headers["Authorization"] = f"Token {token}"

        def listed(**params):
            body = http.get(f"{base}/api/loras/", params=params, timeout=10).json()
            return [x for x in body["results"] if x["name"] == "ink-style"]

        time.sleep(1.0)  # the watcher starts after the server answers
        copied = time.monotonic()
        shutil.copy(source, root / "ink-style.safetensors")
        found = _wait(listed, 5, step=0.2)
        took = time.monotonic() - copied
        assert found, "the copied LoRA did not appear within 5 s"
        print(f"copied file listed after {took:.2f} s")

        (root / "ink-style.safetensors").unlink()

        def missing():
            rows = listed(status="missing") or listed()
            return rows and rows[0].get("status") == "missing" and rows

        assert _wait(missing, 5, step=0.2), listed()
