"""The site navigation on a phone (390x844): collapsed behind a menu button, one header row,
opened and closed by the button and Escape; on a desktop the links show without the button."""

from __future__ import annotations

import pytest
from playwright import sync_api as playwright_api

from tests.support.browser import launch, log_in

expect = playwright_api.expect
pytestmark = pytest.mark.django_db(transaction=True)

PHONE = {"width": 390, "height": 844}


def _header_height(page) -> float:
    return page.eval_on_selector("header.top", "el => el.getBoundingClientRect().height")


def test_phone_nav_collapses_behind_a_menu_button(asgi_live_server, user, fake_profile):
    base = asgi_live_server
    with playwright_api.sync_playwright() as p:
        browser = launch(p)
        context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            log_in(page, base, next_url="/gallery/")
            toggle = page.locator("header.top .nav-toggle")
            nav = page.locator("#site-nav")
            expect(toggle).to_be_visible()
            expect(nav).to_be_hidden()
            # The three bars of the icon are drawn (an empty box was shipped once).
            bars = toggle.locator("span")
            widths = [bars.nth(i).bounding_box()["width"] for i in range(bars.count())]
            assert len(widths) == 3 and min(widths) >= 12, widths
            # One row: brand, menu button and user fit in a header under 70 px tall.
            assert _header_height(page) < 70, _header_height(page)
            toggle.click()
            expect(nav).to_be_visible()
            expect(toggle).to_have_attribute("aria-expanded", "true")
            gallery = nav.get_by_role("link", name="Gallery")
            expect(gallery).to_have_attribute("aria-current", "page")
            # Every link is a comfortable tap target, stacked in one column.
            links = nav.locator("a")
            boxes = [links.nth(i).bounding_box() for i in range(links.count())]
            assert all(b["height"] >= 30 for b in boxes), boxes
            assert len({round(b["x"]) for b in boxes}) == 1, boxes
            page.keyboard.press("Escape")
            expect(nav).to_be_hidden()
            expect(toggle).to_have_attribute("aria-expanded", "false")
            toggle.click()
            nav.get_by_role("link", name="LoRAs").click()
            page.wait_for_url(f"{base}/loras/")
            expect(page.locator("#site-nav")).to_be_hidden()  # a new page starts closed
        finally:
            context.close()
            browser.close()
    assert errors == []


def test_desktop_nav_shows_links_without_the_button(asgi_live_server, user, fake_profile):
    base = asgi_live_server
    with playwright_api.sync_playwright() as p:
        browser = launch(p)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        try:
            log_in(page, base, next_url="/gallery/")
            expect(page.locator("header.top .nav-toggle")).to_be_hidden()
            expect(page.locator("#site-nav")).to_be_visible()
            expect(page.locator("#site-nav").get_by_role("link", name="Gallery")).to_have_attribute(
                "aria-current", "page")
        finally:
            context.close()
            browser.close()


def test_phone_generate_brings_the_output_into_view(asgi_live_server, user, fake_profile):
    """At 390x844 the output card sits below the form: after Generate it scrolls into view,
    with the progress bar on screen, and the page never scrolls sideways."""
    base = asgi_live_server
    with playwright_api.sync_playwright() as p:
        browser = launch(p)
        context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
        page = context.new_page()
        try:
            log_in(page, base)
            page.fill("#id_prompt", "a lighthouse on a phone")
            out = page.locator("#output")
            assert out.bounding_box()["y"] > PHONE["height"]  # below the fold at first
            page.locator("#generate-btn").click()
            page.wait_for_function("document.querySelector('#progress').value === 1",
                                   timeout=30_000)
            page.wait_for_timeout(600)  # the smooth scroll settles
            box = out.bounding_box()
            assert -5 <= box["y"] and box["y"] + min(box["height"], 300) <= PHONE["height"], box
            bar = page.locator("#progress").bounding_box()
            assert 0 <= bar["y"] < PHONE["height"], bar
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        finally:
            context.close()
            browser.close()
