"""Test settings. `DATABASE_URL`/`REDIS_URL` switch the suite to PostgreSQL and Redis."""

import os

from .base import *  # noqa: F401,F403
from .base import DATABASES, IMAGE_PROVIDERS, VAR_DIR, env

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
JOB_PROGRESS_MIN_INTERVAL = 0.0
SECRET_KEY = env("DJANGO_SECRET_KEY", default="test-only-secret-key-not-for-deployment-0123456789")
# Rate limits off (every THROTTLE_*_RATE of base.py): the suite shares one cache per process;
# tests/security turn them on.
for _name in [n for n in dir() if n.startswith("THROTTLE_") and n.endswith("_RATE")]:
    globals()[_name] = env(_name, default="")
# Test servers started as subprocesses (tests/support/servers.py) set EMBEDDED_WORKER=1.
EMBEDDED_WORKER = env.bool("EMBEDDED_WORKER", default=False)
# Test servers share the demo LoRA folder: no watcher unless a test asks (LIBRARY_WATCH=1).
LIBRARY_WATCH = env.bool("LIBRARY_WATCH", default=False)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file (not in-memory) test database, so worker threads and server subprocesses share it.
    DATABASES["default"]["TEST"] = {
        "NAME": os.environ.get("ATELIER_TEST_DB", str(VAR_DIR / f"test-{os.getpid()}.sqlite3"))
    }
elif os.environ.get("ATELIER_TEST_DB"):
    # PostgreSQL: a test database name of its own, so two suites can run side by side.
    DATABASES["default"]["TEST"] = {"NAME": os.environ["ATELIER_TEST_DB"]}
IMAGE_PROVIDERS = {
    **IMAGE_PROVIDERS,
    # One torch thread: on 2 cores shared with test servers, 2 threads stall (10x slower).
    "diffusers_local": {**IMAGE_PROVIDERS["diffusers_local"],
                        "OPTIONS": {**IMAGE_PROVIDERS["diffusers_local"]["OPTIONS"],
                                    "num_threads": env.int("DIFFUSERS_NUM_THREADS", default=1)}},
    "fake": {"BACKEND": "providers.fake.FakeProvider", "QUEUE": "default",
             "OPTIONS": {"step_delay": 0.0}},
    "fake_slow": {"BACKEND": "providers.fake.FakeProvider", "QUEUE": "default",
                  "OPTIONS": {"step_delay": 0.05}},
    # The fake provider on the "gpu" queue (topology test: a -Q gpu worker runs it).
    "fake_gpu": {"BACKEND": "providers.fake.FakeProvider", "QUEUE": "gpu",
                 "OPTIONS": {"step_delay": 0.0}},
}
