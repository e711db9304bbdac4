"""``python manage.py dispatch_jobs``: the job dispatcher as its own process (production).

Re-queues or fails running jobs whose worker died (lease expired) and publishes again the tasks
of queued jobs whose broker message is gone; see ``jobs.dispatcher``. Stops on SIGTERM/SIGINT.
"""

import signal
import threading

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the job dispatcher (lost messages, dead workers) until stopped."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="One pass, print the counts.")
        parser.add_argument("--interval", type=float, default=None,
                            help="Seconds between passes (default JOB_DISPATCH_INTERVAL).")

    def handle(self, *args, once, interval, **options):
        from jobs.dispatcher import DispatcherLoop, jobs_dispatch

        if once:
            self.stdout.write(str(jobs_dispatch()))
            return
        stopped = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stopped.set())
        loop = DispatcherLoop(interval=interval).start()
        self.stdout.write(f"dispatcher running every {loop.interval:g} s")
        self.stdout.flush()
        stopped.wait()
        loop.stop()
