"""usage_count and last_used_at (issue 11, item 8): one use per generation, never lost to a
concurrent one, sortable by "Most used"."""

import pytest

from loras.services.usage import lora_usage_record
from tests.factories import LoraFactory

pytestmark = pytest.mark.django_db


def test_each_generation_counts_once_per_lora(api_client):
    a, b, c = LoraFactory(name="a"), LoraFactory(name="b"), LoraFactory(name="c")
    assert lora_usage_record(lora_ids=[a.pk, b.pk, a.pk, None, "x", 999999]) == 2
    assert lora_usage_record(lora_ids=[str(a.pk)]) == 1
    assert lora_usage_record(lora_ids=[]) == 0
    for row in (a, b, c):
        row.refresh_from_db()
    assert (a.usage_count, b.usage_count, c.usage_count) == (2, 1, 0)
    assert a.last_used_at >= b.last_used_at and c.last_used_at is None
    r = api_client.get("/api/loras/?ordering=-usage_count")
    assert [i["name"] for i in r.json()["results"]] == ["a", "b", "c"]
    assert r.json()["results"][0]["last_used_at"] is not None
