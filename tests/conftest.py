"""Shared fixtures: media in a tmp dir, users, API clients, a real Celery worker, live servers."""

import pytest
from rest_framework.test import APIClient

from providers import registry
from tests.factories import ModelProfileFactory, UserFactory


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    yield
    registry.reset()


@pytest.fixture
def user(db):
    return UserFactory(username="alice")


@pytest.fixture
def other_user(db):
    return UserFactory(username="mallory")


@pytest.fixture
def fake_profile(db):
    return ModelProfileFactory()


@pytest.fixture
def api_client(user):
    """An APIClient authenticated with ``user``'s DRF token."""
    from rest_framework.authtoken.models import Token

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


@pytest.fixture
def anon_client():
    return APIClient()


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker):
    """A real Celery worker (solo pool, in a thread) on the configured broker: the in-memory
    transport, or Redis when REDIS_URL is set. Tests using it need ``transaction=True``."""
    from config.celery_app import app
    from jobs.embedded import QUEUES, start_embedded_worker, stop_embedded_worker

    # Tasks left in Redis by an earlier run would run against this run's rows: drop them.
    with app.connection_for_write() as conn:
        for queue in QUEUES:
            conn.default_channel.queue_purge(queue)
    with django_db_blocker.unblock():
        worker = start_embedded_worker(loglevel="ERROR")
        yield worker
        stop_embedded_worker()


@pytest.fixture
def asgi_live_server(transactional_db, settings, tmp_path):
    """A real daphne server (HTTP + WebSocket) in a subprocess with its embedded worker, on the
    test database; yields the base URL."""
    from tests.support.servers import start_server

    with start_server(media_root=settings.MEDIA_ROOT, embedded=True) as url:
        yield url


def pytest_collection_modifyitems(config, items):
    """browser / reliability / slow markers by path and by what a test starts
    (tests/support/markers.py); ``make test-fast`` deselects them."""
    from tests.support.markers import mark_items

    mark_items(items)
