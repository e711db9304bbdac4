import pytest


@pytest.fixture(autouse=True)
def _short_wait(settings):
    """A call whose job never ends fails in a minute, not COMPAT_WAIT_SECONDS' ten."""
    settings.COMPAT_WAIT_SECONDS = 60
