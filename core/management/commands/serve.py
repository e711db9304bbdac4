"""``python manage.py serve``: the daphne ASGI server, plus the embedded Celery worker thread
when no Redis is configured (the one-process default of ``make run``)."""

import os

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Serve Atelier with daphne (HTTP + WebSocket); embedded worker unless REDIS_URL is set."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--no-worker", action="store_true",
                            help="Do not start the embedded worker even without Redis.")

    def handle(self, *args, host, port, no_worker, **options):
        from daphne.cli import CommandLineInterface

        if settings.EMBEDDED_WORKER and not no_worker:
            from jobs.embedded import start_embedded_worker
            from providers.warmup import warm_up_in_background

            from jobs.services import jobs_reap

            # The in-memory broker forgot what was queued or running before this start.
            lost = jobs_reap(older_than_seconds=0, statuses=("queued", "running", "paused"),
                             code="server_restarted",
                             message="The server restarted before this job finished; "
                                     "start it again.")
            if lost:
                self.stdout.write(f"Marked {lost} unfinished job(s) of the previous run failed.")
            start_embedded_worker()
            from example_images.services_download import example_downloads_resume

            # An example-image download keeps its state in its job: continue it (issue #4).
            if example_downloads_resume():
                self.stdout.write("Resuming the interrupted example-image download.")
            warm_up_in_background()
            mode = "embedded worker thread, in-memory broker and channel layer"
        else:
            mode = f"external workers via {settings.CELERY_BROKER_URL.split('@')[-1]}"
        self.stdout.write(f"Atelier on http://{host}:{port}/  ({mode})", ending="\n")
        self.stdout.flush()
        CommandLineInterface().run(["-b", host, "-p", str(port), "--proxy-headers",
                                    "config.asgi:application"])
