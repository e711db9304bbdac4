"""alice (``user``, what ``api_client`` signs in as) manages the library
(``loras.manage_library``, docs/library.md): these tests send bad input to the library's write
endpoints, which refuse anyone else with 403 before reading the input."""

import pytest

from tests.factories import UserFactory
from tests.loras.library_perms import grant_manage_library


@pytest.fixture
def user(db):
    return grant_manage_library(UserFactory(username="alice"))
