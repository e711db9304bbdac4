"""Fixtures of the fault tests: a private Redis they may kill, real Celery worker processes they
may SIGKILL, the job dispatcher process, a real web server, an API client.

The database is the test database of the session (a SQLite file shared with the subprocesses in
the plain mode, PostgreSQL ``test_test`` when ``DATABASE_URL`` is set) unless a test starts its
own PostgreSQL; the broker is always a private ``redis-server`` so that stopping it never
disturbs other tests. The processes themselves are in :mod:`tests.reliability.processes`.
"""

from __future__ import annotations

import pytest

from tests.support.services import private_redis

from .processes import (  # noqa: F401 - the names the tests import from here
    LEASE_ENV,
    Api,
    WorkerProcess,
    dispatcher_process,
    worker_process,
)


@pytest.fixture
def redis_server():
    """A private, killable Redis (:class:`tests.support.services.PrivateRedis`)."""
    with private_redis() as redis:
        yield redis


@pytest.fixture
def dispatcher(settings, tmp_path, redis_server):
    """The job dispatcher (``manage.py dispatch_jobs --interval 1``) on the session's test
    database and the private Redis, with the short leases of ``LEASE_ENV``."""
    with dispatcher_process(media_root=settings.MEDIA_ROOT, redis_url=redis_server.url,
                            log_dir=tmp_path) as process:
        yield process
