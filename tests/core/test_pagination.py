"""core.pagination.CappedCountPagination on the real LoRA list: exact counts under the cap,
``count_exact: false`` and a working ``next`` past it, exact again for pages past the cap."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from core.pagination import CappedCountPagination
from tests.factories import LibraryRootFactory, LoraFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(db):
    client = APIClient()
    client.force_authenticate(UserFactory(username="pat"))
    return client


@pytest.fixture
def loras(db):
    root = LibraryRootFactory()
    return [LoraFactory(root=root, name=f"l{i:03d}") for i in range(25)]


def _names(body):
    return [x["name"] for x in body["results"]]


def test_under_the_cap_the_count_is_exact(api, loras, settings):
    settings.PAGINATION_COUNT_CAP = 100
    body = api.get("/api/loras/", {"page_size": 10}).json()
    assert body["count"] == 25 and body["count_exact"] is True
    assert _names(body) == [f"l{i:03d}" for i in range(10)]


def test_past_the_cap_the_count_is_the_cap_and_pages_go_on(api, loras, settings):
    settings.PAGINATION_COUNT_CAP = 15
    first = api.get("/api/loras/", {"page_size": 10}).json()
    assert (first["count"], first["count_exact"]) == (15, False)
    assert "page=2" in first["next"]
    second = api.get(first["next"]).json()
    assert _names(second) == [f"l{i:03d}" for i in range(10, 20)]
    assert second["count_exact"] is False
    assert second["next"] and "page=3" in second["next"]  # more rows than the capped count
    third = api.get(second["next"]).json()  # past the cap: counted exactly
    assert (third["count"], third["count_exact"]) == (25, True)
    assert _names(third) == [f"l{i:03d}" for i in range(20, 25)]
    assert third["next"] is None
    assert api.get("/api/loras/", {"page_size": 10, "page": 4}).status_code == 404


def test_the_capped_count_reads_at_most_cap_plus_one_rows(api, loras, settings):
    settings.PAGINATION_COUNT_CAP = 15
    with CaptureQueriesContext(connection) as ctx:
        api.get("/api/loras/", {"page_size": 10})
    counts = [q["sql"] for q in ctx.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts and all("LIMIT 16" in sql for sql in counts), counts


def test_schema_lists_count_exact():
    schema = CappedCountPagination().get_paginated_response_schema({"type": "array"})
    assert schema["properties"]["count_exact"]["type"] == "boolean"
    assert "count_exact" in schema["required"]
