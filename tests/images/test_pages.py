"""Server-rendered pages through Django's test client: login required, others' private images
404, capabilities rendered with the profiles, usage charts computed from usage logs."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.utils import timezone

from images.models import Image, UsageLog
from images.selectors_pages import bar_chart, column_chart, usage_summary
from tests.factories import ModelProfileFactory, UserFactory

pytestmark = pytest.mark.django_db


def _image(user, **kw):
    defaults = dict(user=user, file="images/x.png", width=64, height=64, seed=7, steps=4,
                    guidance_scale=5.0, prompt="a fox", provider="fake", model_name="Fake")
    defaults.update(kw)
    return Image.objects.create(**defaults)


@pytest.fixture
def client_alice(client, user):
    client.force_login(user)
    return client


@pytest.mark.parametrize("url", ["/", "/gallery/", "/projects/", "/projects/1/", "/usage/",
                                 "/images/1/"])
def test_pages_need_login(client, url):
    resp = client.get(url)
    assert resp.status_code == 302
    assert resp["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("url,marker", [
    ("/gallery/", 'id="gallery-filters"'),
    ("/projects/", 'id="project-create"'),
    ("/projects/5/", 'data-api-gallery="/api/projects/5/gallery/"'),
    ("/usage/", 'id="usage-totals"'),
])
def test_pages_render_with_nav(client_alice, url, marker):
    resp = client_alice.get(url)
    assert resp.status_code == 200
    html = resp.content.decode()
    assert marker in html
    assert 'href="/projects/"' in html and 'href="/usage/"' in html


def test_generate_page_renders_profiles_with_capabilities(client_alice, fake_profile):
    ModelProfileFactory(slug="ghost", name="Ghost", provider="not_configured", is_default=False)
    html = client_alice.get("/").content.decode()
    fake_opt = re.search(r'<option value="fake"[^>]*>', html, re.S).group(0)
    # The fake provider's Capabilities as JSON (HTML-escaped in the attribute).
    assert "&quot;loras&quot;: true" in fake_opt and "&quot;txt2img&quot;: true" in fake_opt
    assert 'data-unavailable=""' in fake_opt
    ghost_opt = re.search(r'<option value="ghost"[^>]*>', html, re.S).group(0)
    assert "not_configured" in re.search(r'data-unavailable="([^"]*)"', ghost_opt).group(1)
    assert 'data-capabilities="{}"' in ghost_opt
    assert 'id="job-queue"' in html and 'id="id_style"' in html and 'id="lora-search"' in html


def test_image_detail_owner_sees_actions_others_get_404_or_read_only(client, user, other_user):
    private = _image(user)
    public = _image(user, is_public=True)
    client.force_login(user)
    html = client.get(f"/images/{private.pk}/").content.decode()
    assert 'id="owner-panel"' in html and "image_detail.js" in html
    client.force_login(other_user)
    assert client.get(f"/images/{private.pk}/").status_code == 404
    resp = client.get(f"/images/{public.pk}/")
    assert resp.status_code == 200
    html = resp.content.decode()
    assert 'id="owner-panel"' not in html and "By alice" in html
    assert 'id="regenerate-link"' in html


def test_usage_summary_counts_per_day_provider_model_lora_and_cost(user, other_user):
    now = timezone.now()
    UsageLog.objects.create(user=user, provider="fake", model_name="Fake", image_count=2,
                            duration_seconds=1.5, lora_names=["inkwash", "fox"],
                            estimated_cost=Decimal("0.04"))
    UsageLog.objects.create(user=user, provider="replicate", model_name="Flux", image_count=1,
                            duration_seconds=3.0, lora_names=["inkwash"],
                            estimated_cost=Decimal("0.01"))
    old = UsageLog.objects.create(user=user, provider="fake", model_name="Fake", image_count=1)
    UsageLog.objects.filter(pk=old.pk).update(created_at=now - dt.timedelta(days=3))
    UsageLog.objects.create(user=other_user, provider="fake", model_name="Fake", image_count=9)

    s = usage_summary(user=user, days=7)
    assert s["totals"]["generations"] == 3
    assert s["totals"]["images"] == 4
    assert s["totals"]["seconds"] == pytest.approx(4.5)
    assert s["totals"]["cost"] == Decimal("0.05")
    assert len(s["per_day"]) == 7
    assert s["per_day"][-1][1] == 2 and s["per_day"][-4][1] == 1
    assert s["per_provider"] == [("fake", 2), ("replicate", 1)]
    assert s["per_model"] == [("Fake", 2), ("Flux", 1)]
    assert s["per_lora"] == [("inkwash", 2), ("fox", 1)]
    assert usage_summary(user=None, days=7)["totals"]["generations"] == 4


def test_usage_page_draws_bars_scaled_to_the_largest(client_alice, user):
    for provider, n in (("fake", 4), ("replicate", 2)):
        for _ in range(n):
            UsageLog.objects.create(user=user, provider=provider, model_name="M", image_count=1,
                                    estimated_cost=Decimal("0.25"))
    html = client_alice.get("/usage/").content.decode()
    assert re.search(r'id="total-generations">6<', html)
    assert "$1.50" in html
    section = html[html.index('id="chart-provider"'):html.index('id="chart-model"')]
    widths = {label: float(w) for label, w in re.findall(
        r'data-label="([^"]+)" data-value="\d+">.*?<rect [^>]*width="([\d.]+)"', section, re.S)}
    assert widths["fake"] == pytest.approx(2 * widths["replicate"], rel=0.01)


def test_usage_page_all_users_only_for_staff(client, user, other_user):
    UsageLog.objects.create(user=other_user, provider="fake", model_name="M", image_count=1)
    client.force_login(user)
    assert 'id="total-generations">0<' in client.get("/usage/?all=1").content.decode()
    staff = UserFactory(username="root", is_staff=True)
    client.force_login(staff)
    assert 'id="total-generations">1<' in client.get("/usage/?all=1").content.decode()


def test_chart_geometry():
    bars = bar_chart([("a", 10), ("b", 5), ("c", 0)])
    assert [b["w"] for b in bars["bars"]][2] == 0
    assert bars["bars"][0]["w"] == pytest.approx(2 * bars["bars"][1]["w"])
    cols = column_chart([("d1", 0), ("d2", 3), ("d3", 6)], height=122, pad_bottom=22,
                        pad_top=0)
    assert [c["h"] for c in cols["columns"]] == [0, 50.0, 100.0]
    assert cols["columns"][2]["y"] == 0 and cols["columns"][0]["y"] == 100.0
    assert bar_chart([])["empty"] and column_chart([])["empty"]
