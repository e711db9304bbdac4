"""The usage page's per-model and per-LoRA bar charts: long names are cut with "…" inside the
chart (every label starts inside the SVG) and the whole name stays in the bar's tooltip."""

from __future__ import annotations

import pytest
from playwright import sync_api as playwright_api

from images.models import UsageLog
from images.selectors_pages import bar_chart
from tests.support.browser import launch, log_in

pytestmark = pytest.mark.django_db(transaction=True)

LONG = "Realistic Vision V6.0 B1 (noVAE), fp16 pruned, from the author's own mirror"


def test_bar_labels_fit_the_room_they_get():
    chart = bar_chart([(LONG, 3), ("sd15", 1)])
    first, second = chart["bars"]
    assert first["full_label"] == LONG and first["label"].endswith("…")
    assert len(first["label"]) * 7.0 + 12 <= chart["label_width"] + 7
    assert second["label"] == "sd15"
    assert bar_chart([("a", 1), ("b", 2)])["label_width"] == 80  # short names: more bar room


def test_usage_page_labels_start_inside_the_chart(asgi_live_server, user, fake_profile):
    for name, count in ((LONG, 3), ("Demo (tiny SD 1.x, random weights)", 2), ("x", 1)):
        for _ in range(count):
            UsageLog.objects.create(user=user, provider="fake", model_name=name, image_count=1,
                                    lora_names=[f"{name[:30]} lora"])
    with playwright_api.sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        try:
            log_in(page, asgi_live_server, next_url="/usage/")
            boxes = page.eval_on_selector_all(
                "section.chart svg g.bar text:not(.value)",
                "els => els.map(e => { const b = e.getBBox(); return [e.textContent, b.x]; })")
            titles = page.eval_on_selector_all("section.chart svg g.bar title",
                                               "els => els.map(e => e.textContent)")
        finally:
            browser.close()
    assert boxes, "no bar labels on the usage page"
    assert all(x >= -0.5 for _, x in boxes), boxes
    assert any(text.endswith("…") for text, _ in boxes)
    assert any(t.startswith(LONG) for t in titles)
