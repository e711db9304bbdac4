"""/api/docs/ (Swagger UI) and /api/redoc/ (ReDoc) render with every request to another host
aborted, and the main pages attempt none (issue 15; the HTML rule is
tests/core/test_no_external_origins.py)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright import sync_api as playwright_api

from tests.core.test_no_external_origins import _is_external
from tests.factories import ModelProfileFactory, UserFactory
from tests.support.browser import launch, log_in

expect = playwright_api.expect
pytestmark = pytest.mark.django_db(transaction=True)


def test_api_docs_render_with_the_network_blocked(asgi_live_server):
    UserFactory(username="alice", is_staff=True, is_superuser=True)
    ModelProfileFactory()
    base = asgi_live_server
    own = urlsplit(base).netloc
    blocked: list[str] = []

    def only_ours(route):
        if urlsplit(route.request.url).netloc == own:
            return route.continue_()
        blocked.append(route.request.url)
        return route.abort()

    with playwright_api.sync_playwright() as p:
        browser = launch(p)
        context = browser.new_context()
        context.route("**/*", only_ours)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            log_in(page, base, next_url="/")
            for path in ("/", "/gallery/", "/loras/", "/admin/"):
                page.goto(base + path)
                page.wait_for_load_state("networkidle")
            page.goto(base + "/api/docs/")
            expect(page.locator(".swagger-ui .info .title")).to_contain_text("Atelier API",
                                                                              timeout=90_000)
            expect(page.locator(".opblock").first).to_be_visible()
            page.wait_for_load_state("networkidle")
            icon = page.locator("link[rel~=icon]").first.get_attribute("href")
            assert icon and not _is_external(icon)
            page.goto(base + "/api/redoc/")
            expect(page.locator("h1").first).to_contain_text("Atelier API", timeout=90_000)
            # ReDoc's sidebar footer shows a logo from its CDN; the page's policy keeps the
            # browser from asking for it (the link stays, it loads nothing by itself).
            expect(page.get_by_text("API docs by Redocly")).to_be_visible()
            page.wait_for_load_state("networkidle")
            page.wait_for_timeout(500)
        finally:
            context.close()
            browser.close()
    assert blocked == []
    assert errors == []
