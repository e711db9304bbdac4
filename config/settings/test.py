"""Test settings. `DATABASE_URL`/`REDIS_URL` switch the suite to PostgreSQL and Redis."""

from .base import *  # noqa: F401,F403
from .base import IMAGE_PROVIDERS

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
JOB_PROGRESS_MIN_INTERVAL = 0.0
EMBEDDED_WORKER = False
IMAGE_PROVIDERS = {
    **IMAGE_PROVIDERS,
    "fake": {"BACKEND": "providers.fake.FakeProvider", "QUEUE": "default",
             "OPTIONS": {"step_delay": 0.0}},
    "fake_slow": {"BACKEND": "providers.fake.FakeProvider", "QUEUE": "default",
                  "OPTIONS": {"step_delay": 0.05}},
}
