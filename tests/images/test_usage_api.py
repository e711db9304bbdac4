"""Usage API: logs and totals by day, provider, model, LoRA and user; staff see everyone,
others only themselves."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from images.models import UsageLog

pytestmark = pytest.mark.django_db


@pytest.fixture
def logs(user, other_user):
    now = timezone.now()
    rows = [
        (user, "fake", "Fake", 2, "0.0000", ["ink"], 0),
        (user, "replicate", "Flux Dev", 1, "0.0039", ["ink", "noir"], 0),
        (user, "replicate", "Flux Dev", 4, "0.0156", [], 3),
        (other_user, "openai", "gpt-image-1", 1, "0.0400", [], 0),
    ]
    out = []
    for owner, provider, model, count, cost, loras, days_ago in rows:
        log = UsageLog.objects.create(user=owner, provider=provider, model_name=model,
                                      image_count=count, duration_seconds=1.5,
                                      estimated_cost=Decimal(cost), lora_names=loras)
        UsageLog.objects.filter(pk=log.pk).update(created_at=now - timedelta(days=days_ago))
        out.append(log)
    return out


@pytest.fixture
def staff_client(admin_user):
    client = APIClient()
    client.force_authenticate(admin_user)
    return client


def test_users_see_their_own_logs(api_client, logs):
    data = api_client.get("/api/usage/").json()
    assert data["count"] == 3 and {r["user"] for r in data["results"]} == {"alice"}
    row = next(r for r in data["results"] if r["lora_names"] == ["ink", "noir"])
    assert row["estimated_cost"] == "0.0039" and row["provider"] == "replicate"
    assert api_client.get("/api/usage/?provider=replicate").json()["count"] == 2
    # a user cannot peek at another user's usage through the filter
    assert api_client.get("/api/usage/?user=mallory").json()["count"] == 0


def test_summary_totals(api_client, logs):
    data = api_client.get("/api/usage/summary/").json()
    assert data["overall"] == {"generations": 3, "images": 7, "cost": "0.0195", "seconds": 4.5}
    assert [(r["key"], r["generations"], r["images"]) for r in data["by_provider"]] == [
        ("replicate", 2, 5), ("fake", 1, 2)]
    assert [(r["key"], r["cost"]) for r in data["by_model"]] == [
        ("Flux Dev", "0.0195"), ("Fake", "0.0000")]
    assert [(r["key"], r["generations"], r["images"]) for r in data["by_lora"]] == [
        ("ink", 2, 3), ("noir", 1, 1)]
    assert [(r["key"], r["generations"]) for r in data["by_day"]] == [
        ((timezone.now() - timedelta(days=3)).date().isoformat(), 1),
        (timezone.now().date().isoformat(), 2)]
    assert [r["key"] for r in data["by_user"]] == ["alice"]
    recent = api_client.get("/api/usage/summary/?days=1").json()
    assert recent["overall"]["generations"] == 2


def test_staff_see_everyone(staff_client, logs):
    assert staff_client.get("/api/usage/").json()["count"] == 4
    data = staff_client.get("/api/usage/summary/").json()
    assert {r["key"]: r["generations"] for r in data["by_user"]} == {"alice": 3, "mallory": 1}
    assert data["overall"]["cost"] == "0.0595"
    only = staff_client.get("/api/usage/summary/?user=mallory").json()
    assert only["overall"]["generations"] == 1


def test_anonymous_is_401(anon_client, logs):
    assert anon_client.get("/api/usage/").status_code == 401
    assert anon_client.get("/api/usage/summary/").status_code == 401
