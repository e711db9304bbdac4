"""The library follows its folders: new, changed, moved and removed files under the library
roots are picked up within seconds while the server runs.

A :class:`LibraryWatcher` listens to file-system events with watchdog (inotify on Linux,
FSEvents on macOS, ReadDirectoryChangesW on Windows; https://python-watchdog.readthedocs.io/)
on every enabled library root. Events are debounced (a copy of a 2 GB checkpoint fires many
"modified" events): once the folders have been quiet for ``LIBRARY_WATCH_DEBOUNCE_SECONDS``, the
watcher starts the ordinary library scan job (:func:`loras.services.scan.library_scan_start`),
whose incremental code hashes only new or changed files and marks vanished ones missing. While a
scan is running, the watcher waits and starts another one after it, so nothing is missed and two
scans never run at once. ``LIBRARY_RESCAN_SECONDS`` adds a periodic rescan as a fallback for
file systems that send no events (network shares, some container mounts).

Runs inside ``manage.py serve`` (embedded mode) and as ``manage.py watch_library`` beside the
workers in production.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from django.conf import settings

log = logging.getLogger(__name__)

#: Names the scan itself or a half-finished copy writes; their events never start a scan.
IGNORED_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".download", ".lock")
IGNORED_PARTS = (f"{os.sep}.atelier-trash", f"{os.sep}.trash")


def _default_trigger() -> None:
    """Start a library scan job (raises ApplicationError 409 ``job_running`` while one runs)."""
    from .services.scan import library_scan_start

    library_scan_start(user=None)


def _relevant(path: str) -> bool:
    """Whether an event on ``path`` may change the library (not a temp file or the trash)."""
    if not path:
        return False
    name = os.path.basename(path)
    if name.startswith(".") or name.lower().endswith(IGNORED_SUFFIXES):
        return False
    return not any(part in path for part in IGNORED_PARTS)


class LibraryWatcher:
    """Watch ``roots`` (folder paths) and call ``trigger()`` after changes.

    Args:
        roots: folders to watch recursively; default: the paths of the enabled library roots
            (after ``library_roots_sync()``).
        debounce: seconds of quiet after the last event before ``trigger`` runs.
        rescan_seconds: also call ``trigger`` this often without events (0: never).
        trigger: what to run; default starts a library scan job. An exception with
            ``status == 409`` (a scan already running) means "try again shortly"; others are
            logged and retried after ``debounce``.
        poll: seconds between checks of the debounce clock.

    ``scans_started`` counts successful triggers (for tests and logs).
    """

    def __init__(self, *, roots: list[str] | None = None, debounce: float | None = None,
                 rescan_seconds: float | None = None,
                 trigger: Callable[[], None] | None = None, poll: float = 0.2):
        self.roots = roots
        self.debounce = float(settings.LIBRARY_WATCH_DEBOUNCE_SECONDS
                              if debounce is None else debounce)
        self.rescan_seconds = float(settings.LIBRARY_RESCAN_SECONDS
                                    if rescan_seconds is None else rescan_seconds)
        self.trigger = trigger or _default_trigger
        self.poll = poll
        self.scans_started = 0
        self._last_event = 0.0
        self._dirty = False
        self._last_scan = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._observer = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ events
    def notify(self, path: str) -> None:
        """Record a change at ``path`` (called by watchdog's thread)."""
        if _relevant(path):
            with self._lock:
                self._dirty = True
                self._last_event = time.monotonic()

    def _handler(self):
        from watchdog.events import FileSystemEventHandler

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event):  # noqa: D102 - watchdog's callback
                if event.event_type in ("opened", "closed_no_write"):
                    return  # reads (our own hashing) change nothing
                if event.is_directory and event.event_type == "modified":
                    return  # a folder's mtime: its files' own events tell what changed
                watcher.notify(os.fsdecode(event.src_path))
                dest = getattr(event, "dest_path", "")
                if dest:
                    watcher.notify(os.fsdecode(dest))

        return Handler()

    # ------------------------------------------------------------------ lifecycle
    def _root_paths(self) -> list[str]:
        if self.roots is not None:
            return [p for p in self.roots if os.path.isdir(p)]
        from .models import LibraryRoot
        from .services import library_roots_sync

        library_roots_sync()
        return [r.path for r in LibraryRoot.objects.filter(enabled=True) if os.path.isdir(r.path)]

    def start(self) -> LibraryWatcher:
        """Start watching (watchdog's observer thread plus the debounce thread); returns self.

        A root that cannot be watched (inotify watch limit, permissions) is logged and left to
        the periodic rescan.
        """
        from watchdog.observers import Observer

        self._observer = Observer()
        handler = self._handler()
        for path in self._root_paths():
            try:
                self._observer.schedule(handler, path, recursive=True)
            except OSError as exc:
                log.warning("cannot watch %s (%s): relying on the periodic rescan", path, exc)
        self._observer.daemon = True
        self._observer.start()
        self._thread = threading.Thread(target=self._loop, name="library-watcher", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop both threads (waits up to ``timeout`` seconds for each)."""
        self._stop.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout)
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.wait(self.poll):
            now = time.monotonic()
            with self._lock:
                due = self._dirty and now - self._last_event >= self.debounce
            periodic = self.rescan_seconds > 0 and now - self._last_scan >= self.rescan_seconds
            if due or periodic:
                self._fire(now)

    def _fire(self, now: float) -> None:
        with self._lock:
            self._dirty = False
        try:
            self.trigger()
        except Exception as exc:  # noqa: BLE001 - a busy scan or a broker down: retry later
            with self._lock:
                self._dirty = True  # try again: after the running scan, or after a pause
                self._last_event = now if getattr(exc, "status", None) == 409 else time.monotonic()
            if getattr(exc, "status", None) != 409:
                log.warning("library watcher could not start a scan: %s", exc)
            return
        self.scans_started += 1
        self._last_scan = now
        log.info("library changed: scan started")


def watcher_start_if_enabled() -> LibraryWatcher | None:
    """Start a :class:`LibraryWatcher` when ``LIBRARY_WATCH`` is on; None otherwise or when it
    cannot start (logged)."""
    if not settings.LIBRARY_WATCH:
        return None
    try:
        return LibraryWatcher().start()
    except Exception as exc:  # noqa: BLE001 - the server runs on without the watcher
        log.warning("library watcher not started: %s", exc)
        return None
