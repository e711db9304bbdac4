"""Browser tests of the projects pages (create, add/remove images, delete) and the usage page
(server-rendered SVG charts) against the real ASGI server and the real API."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from playwright import sync_api as playwright_api  # noqa: E402

from images.models import UsageLog
from tests.images.test_pages_gallery_browser import browser_page, make_images, shot  # noqa: F401
from tests.support.browser import log_in

expect = playwright_api.expect
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def three_images(user, settings):
    return make_images(user, settings.MEDIA_ROOT, 3)


def test_create_project_add_and_remove_images(asgi_live_server, three_images, browser_page,
                                              tmp_path):
    page, seen = browser_page
    base = asgi_live_server
    log_in(page, base, next_url="/projects/")
    expect(page.locator("#projects-empty")).to_be_visible()

    # A name is required: the API's message is shown.
    page.evaluate("document.getElementById('p-name').removeAttribute('required')")
    page.click("#p-create")
    expect(page.locator("#projects-error")).to_be_visible()

    page.fill("#p-name", "Harbours")
    page.fill("#p-description", "boats and water")
    page.click("#p-create")
    card = page.locator(".project-card", has_text="Harbours")
    expect(card).to_have_count(1)
    expect(card).to_contain_text("0 images")
    expect(page.locator("#projects-error")).to_be_hidden()
    shot(page, tmp_path, "projects-list")

    card.click()
    page.wait_for_url(re.compile(rf"^{re.escape(base)}/projects/\d+/$"))
    project_id = int(page.url.rstrip("/").split("/")[-1])
    expect(page.locator("#project-name")).to_have_text("Harbours")
    expect(page.locator("#project-description")).to_have_text("boats and water")
    expect(page.locator("#project-empty")).to_be_visible()

    page.click("#add-images-btn")
    picker = page.locator("#picker-grid a.tile")
    expect(picker).to_have_count(3)
    picker.first.click()
    expect(page.locator("#project-images a.tile")).to_have_count(1)
    expect(picker).to_have_count(2)
    page.locator("#picker-grid a.tile").first.click()
    expect(page.locator("#project-images a.tile")).to_have_count(2)
    shot(page, tmp_path, "project-detail")

    # Reload: membership is stored; the gallery's project filter agrees.
    page.reload()
    expect(page.locator("#project-images a.tile")).to_have_count(2)
    page.locator("#project-images a.tile").first.locator(".tile-remove").click()
    expect(page.locator("#project-images a.tile")).to_have_count(1)
    page.goto(f"{base}/gallery/?project={project_id}")
    expect(page.locator("#gallery a.tile")).to_have_count(1)
    page.goto(f"{base}/projects/")
    expect(page.locator(".project-card", has_text="Harbours")).to_contain_text("1 image")

    # Delete the project: its images stay.
    page.goto(f"{base}/projects/{project_id}/")
    page.on("dialog", lambda d: d.accept())
    page.click("#delete-project-btn")
    page.wait_for_url(f"{base}/projects/")
    expect(page.locator(".project-card")).to_have_count(0)
    page.goto(f"{base}/gallery/")
    expect(page.locator("#gallery a.tile")).to_have_count(3)
    assert seen["page_errors"] == []


def test_foreign_project_page_shows_the_404_message(asgi_live_server, browser_page):
    page, _ = browser_page
    base = asgi_live_server
    log_in(page, base, next_url="/projects/999/")
    expect(page.locator("#project-error")).to_contain_text("not found")
    expect(page.locator("#project-actions")).to_be_hidden()


@pytest.fixture
def usage_rows(user, other_user):
    for provider, model, n, loras in (("fake", "Fake", 5, ["inkwash"]),
                                      ("replicate", "Flux Schnell", 2, ["inkwash", "pixel"]),
                                      ("openai", "gpt-image-1", 1, [])):
        for _ in range(n):
            UsageLog.objects.create(user=user, provider=provider, model_name=model,
                                    image_count=1, duration_seconds=2.0, lora_names=loras,
                                    estimated_cost=Decimal("0.0400"))
    UsageLog.objects.create(user=other_user, provider="fake", model_name="Fake", image_count=7)


def test_usage_page_charts_and_totals(asgi_live_server, usage_rows, browser_page, tmp_path):
    page, seen = browser_page
    base = asgi_live_server
    log_in(page, base, next_url="/usage/")
    expect(page.locator("#total-generations")).to_have_text("8")
    expect(page.locator("#total-images")).to_have_text("8")
    expect(page.locator("#total-cost")).to_have_text("$0.32")
    provider_bars = page.locator("#chart-provider g.bar")
    expect(provider_bars).to_have_count(3)
    widths = page.eval_on_selector_all(
        "#chart-provider g.bar", "gs => gs.map(g => [g.dataset.label,"
        " g.querySelector('rect').getBoundingClientRect().width])")
    assert [w[0] for w in widths] == ["fake", "replicate", "openai"]
    assert widths[0][1] == pytest.approx(2.5 * widths[1][1], rel=0.02)
    expect(page.locator("#chart-lora g.bar")).to_have_count(2)
    expect(page.locator('#chart-lora g.bar[data-label="inkwash"]')).to_have_attribute(
        "data-value", "7")
    today = page.locator("#chart-day g.bar").last
    expect(today).to_have_attribute("data-value", "8")
    shot(page, tmp_path, "usage")
    page.select_option("#u-days", "7")
    page.wait_for_url(re.compile(r"days=7"))
    expect(page.locator("#chart-day g.bar")).to_have_count(7)
    assert seen["page_errors"] == []


def test_pages_say_clearly_when_an_endpoint_is_missing(asgi_live_server, browser_page):
    """With the styles, jobs, projects and tags endpoints answering 404 (an older server), the
    pages still load and name what is missing."""
    page, seen = browser_page
    base = asgi_live_server
    missing = re.compile(r".*/api/(styles|image-projects|tags|jobs)/(\?.*)?$")
    page.route(missing, lambda route: route.fulfill(
        status=404, content_type="application/json",
        body='{"code": "not_found", "message": "Not found."}'))
    log_in(page, base)
    expect(page.locator("#style-info")).to_contain_text("Styles are not available (HTTP 404)")
    expect(page.locator("#id_style")).to_be_disabled()
    expect(page.locator("#queue-msg")).to_contain_text("Jobs are not available (HTTP 404)")
    page.goto(f"{base}/projects/")
    expect(page.locator("#projects-error")).to_contain_text("not available on this server")
    page.goto(f"{base}/gallery/")
    expect(page.locator("#f-project")).to_be_disabled()
    expect(page.locator("#f-tag option").first).to_have_text("(unavailable)")
    expect(page.locator("#gallery-empty")).to_be_visible()  # the image list itself works
    assert seen["page_errors"] == []
