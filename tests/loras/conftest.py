"""Fixtures of the library tests: ``user`` (alice, what ``api_client`` signs in as) is a library
manager through the ``loras.manage_library`` permission, not staff (docs/library.md); tests of
what other users may not do use ``other_user``."""

import pytest

from tests.factories import UserFactory
from tests.loras.library_perms import grant_manage_library


@pytest.fixture
def user(db):
    return grant_manage_library(UserFactory(username="alice"))
