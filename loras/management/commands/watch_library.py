"""python manage.py watch_library: follow the library roots and start a scan job after changes.

Production runs it beside the Celery workers (the embedded ``manage.py serve`` runs the same
watcher in-process). Stops on SIGINT/SIGTERM.
"""

import signal
import threading

from django.core.management.base import BaseCommand

from loras.watcher import LibraryWatcher


class Command(BaseCommand):
    help = ("Watch the library roots; when files are added, changed, moved or removed, start a "
            "library scan job (debounced by LIBRARY_WATCH_DEBOUNCE_SECONDS, with a periodic "
            "rescan every LIBRARY_RESCAN_SECONDS as fallback).")

    def handle(self, *args, **options):
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        watcher = LibraryWatcher().start()
        self.stdout.write("Watching the library roots (Ctrl-C to stop).")
        self.stdout.flush()
        stop.wait()
        watcher.stop()
        self.stdout.write(f"Stopped after starting {watcher.scans_started} scan(s).")
