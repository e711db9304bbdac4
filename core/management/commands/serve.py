"""``python manage.py serve``: the ASGI server (uvicorn: HTTP + WebSocket), plus the embedded
Celery worker thread when no Redis is configured (the one-process default of ``make run``).

Stopping: SIGTERM or SIGINT (Ctrl-C) at any moment after the command started ends the process
with status 0 within ``SERVE_STOP_SECONDS`` (default 8 s) and without a traceback: uvicorn
stops accepting, closes WebSockets and gives open requests a grace period, then the embedded
worker is stopped; a task still running after the grace is left to the job's lease / the next
start's reaper, and the process exits anyway.

Why uvicorn: it hands the request body to the application as it arrives, so
``core.body_limit.BodyLimitMiddleware`` can refuse an oversized body before it is read (daphne
buffers every body to a temporary file first).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from core.quiet import quiet_model_libraries

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Serve Atelier (HTTP + WebSocket); embedded worker unless REDIS_URL is set."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--no-worker", action="store_true",
                            help="Do not start the embedded worker even without Redis.")

    def handle(self, *args, host, port, no_worker, **options):
        quiet_model_libraries(progress_bars=True)  # before anything imports tqdm
        self._stopping = threading.Event()
        self._server = None
        self._deadline = None
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        embedded = settings.EMBEDDED_WORKER and not no_worker
        try:
            if embedded:
                self._start_embedded()
                mode = "embedded worker thread, in-memory broker and channel layer"
            else:
                mode = f"external workers via {settings.CELERY_BROKER_URL.split('@')[-1]}"
            if not self._stopping.is_set():
                self._serve(host, port, mode)
        finally:
            if embedded:
                self._stop_embedded()
        self.stdout.write("Atelier stopped.")
        # Everything that matters is stopped; what is left are daemon threads (a model warm-up
        # mid-import, a busy task) and asgiref's executor threads, which the interpreter would
        # join at exit (a hang). Flush and leave now.
        logging.shutdown()
        self.stdout.flush()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)

    # ---------------------------------------------------------------- signals
    def _on_signal(self, signum, frame):
        """First SIGTERM/SIGINT: stop gracefully (the server's own handler usually runs
        instead while it serves). The stop budget starts now."""
        if self._deadline is None:
            self._deadline = time.monotonic() + settings.SERVE_STOP_SECONDS
        self._stopping.set()
        if self._server is not None:
            self._server.should_exit = True

    # ---------------------------------------------------------------- embedded worker
    def _start_embedded(self):
        from example_images.services.download import example_downloads_resume
        from jobs.dispatcher import DispatcherLoop, jobs_dispatch
        from jobs.embedded import start_embedded_worker
        from providers.warmup import warm_up_in_background

        # The in-memory broker forgot what was queued or running before this start: queue it
        # again (a job past JOB_MAX_ATTEMPTS runs fails worker_lost), then keep dispatching.
        counts = jobs_dispatch(after_restart=True)
        if counts["requeued"] or counts["republished"]:
            self.stdout.write(f"Queued again {counts['republished']} unfinished job(s) of the "
                              f"previous run ({counts['failed']} failed worker_lost).")
        if self._stopping.is_set():
            return
        start_embedded_worker()
        self._dispatcher = DispatcherLoop().start()
        # An example-image download keeps its state in its job: continue it (issue #4).
        if not self._stopping.is_set() and example_downloads_resume():
            self.stdout.write("Resuming the interrupted example-image download.")
        if not self._stopping.is_set():  # checkpoints added/removed while stopped
            from providers.checkpoints import checkpoints_sync

            try:
                checkpoints_sync()
            except Exception:  # a bad root never stops the server
                log.exception("checkpoint sync failed")
        if not self._stopping.is_set():
            warm_up_in_background()
        if not self._stopping.is_set():  # new/changed/removed library files (LIBRARY_WATCH)
            from loras.watcher import watcher_start_if_enabled

            self._watcher = watcher_start_if_enabled()

    def _stop_embedded(self):
        from jobs.embedded import stop_embedded_worker

        if getattr(self, "_dispatcher", None) is not None:
            self._dispatcher.stop()
        if getattr(self, "_watcher", None) is not None:
            self._watcher.stop(timeout=1.0)

        if self._deadline is None:
            self._deadline = time.monotonic() + settings.SERVE_STOP_SECONDS
        left = max(0.5, self._deadline - time.monotonic())
        if not stop_embedded_worker(timeout=left):
            log.warning("embedded worker still busy after %.0f s: exiting without it; its job "
                        "is failed or re-queued on the next start", settings.SERVE_STOP_SECONDS)

    # ---------------------------------------------------------------- server
    def _serve(self, host: str, port: int, mode: str):
        import uvicorn

        config = uvicorn.Config(
            "config.asgi:application", host=host, port=port,
            lifespan="off",          # Channels' router has no lifespan protocol
            proxy_headers=False,     # X-Forwarded-For is read by core.client_ip (TRUSTED_PROXIES)
            server_header=False,
            access_log=False,        # django.request logs one line per 4xx / 5xx
            log_config=None,         # Django's LOGGING
            ws_max_size=1024 * 1024,  # bytes per WebSocket message
            timeout_graceful_shutdown=max(1, int(settings.SERVE_STOP_SECONDS) // 2),
        )
        server = uvicorn.Server(config)
        self._server = server
        if self._stopping.is_set():
            return
        self.stdout.write(f"Atelier on http://{host}:{port}/  ({mode})", ending="\n")
        self.stdout.flush()
        server.run()
        # uvicorn re-raises the signal it caught once it is done, into _on_signal above.
        if self._deadline is None:
            self._deadline = time.monotonic() + settings.SERVE_STOP_SECONDS
