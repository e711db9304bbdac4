"""Browser tests of the library states added by issue 11 (items 4-7; docs/library.md): a
reader (no library permission) sees no file actions and keeps their own favourites; a manager
sees the update badge and box, ignores a version, edits trigger words and base model, and a
video preview plays. Screenshots at 1280 px (``LORA_SCREENSHOT_DIR`` keeps them)."""

from __future__ import annotations

import pytest
from playwright import sync_api as playwright_api

from loras.models import LoraFavorite, LoraModel
from tests.factories import UserFactory
from tests.loras.test_pages_browser import (  # noqa: F401 (fixtures)
    TIMEOUT_MS,
    _card,
    _shot,
    browser,
    library,
    lora_server,
)
from tests.support.browser import launch, log_in

expect = playwright_api.expect
pytestmark = pytest.mark.django_db(transaction=True)

def test_a_reader_reads_and_keeps_own_favourites(lora_server, library, user, tmp_path):
    bob = UserFactory(username="bob")
    LoraFavorite.objects.create(user=user, lora=library["rows"]["pinup_retro"])  # alice's
    with playwright_api.sync_playwright() as p:
        browser = launch(p)
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.set_default_timeout(TIMEOUT_MS)
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        log_in(page, lora_server, username=bob.username, next_url="/loras/")
        expect(_card(page, "inkwash")).to_be_visible()
        assert page.locator("#scan-btn, #update-check-btn, .lora-check, #bulk-bar").count() == 0
        expect(_card(page, "pinup_retro").locator(".fav-toggle")).to_have_text("☆")
        _card(page, "inkwash").locator(".fav-toggle").click()
        expect(_card(page, "inkwash").locator(".fav-toggle")).to_have_text("★")
        page.check("#f-favorite")
        page.wait_for_url("**favorite=true**")
        assert [c.get_attribute("data-name") for c in page.locator(".lora-card").all()] == [
            "inkwash"]
        _shot(page, tmp_path, "loras-reader-1280")
        page.goto(f"{lora_server}/loras/{library['rows']['inkwash'].pk}/")
        expect(page.locator("#manage-hint")).to_be_visible()
        assert page.locator("#edit-form, #rename-btn, #civitai-refresh").count() == 0
        assert errors == []
        browser.close()
    assert list(LoraFavorite.objects.filter(user=bob).values_list("lora__name", flat=True)) == [
        "inkwash"]

@pytest.fixture
def flagged(library):
    """inkwash has a newer Civitai version; plain_detail a video preview (set before the
    browser starts: the ORM may not run inside Playwright's event loop)."""
    ink = library["rows"]["inkwash"]
    LoraModel.objects.filter(pk=ink.pk).update(
        update_available=True, civitai_update={"version_id": 5679, "name": "v2.0",
                                               "base_model": "SDXL 1.0"})
    (library["dir"] / "plain_detail.preview.mp4").write_bytes(b"")  # the element is checked
    LoraModel.objects.filter(name="plain_detail").update(preview="plain_detail.preview.mp4")
    return {"ink": ink, "plain": LoraModel.objects.get(name="plain_detail").pk}


def test_update_badge_box_ignore_edits_and_video_preview(flagged, lora_server, browser, library,
                                                          tmp_path):
    page, seen = browser
    ink, plain_pk = flagged["ink"], flagged["plain"]

    page.goto(f"{lora_server}/loras/")
    expect(_card(page, "inkwash").locator(".badge.update")).to_have_text("update")
    assert _card(page, "plain_detail").locator("video").count() == 1
    page.check("#f-update")
    page.wait_for_url("**update_available=true**")
    assert [c.get_attribute("data-name") for c in page.locator(".lora-card").all()] == [
        "inkwash"]
    _shot(page, tmp_path, "loras-updates-1280")

    page.goto(f"{lora_server}/loras/{ink.pk}/")
    expect(page.locator("#update-box")).to_contain_text("v2.0")
    _shot(page, tmp_path, "lora-detail-update-1280")
    page.fill("#edit-triggers", "inkwash style, sumi-e, brush")
    page.fill("#edit-base-model", "Pony")
    page.click("#save-btn")
    expect(page.locator("#save-state")).to_have_text("Saved")
    page.click("#ignore-version-btn")
    page.wait_for_load_state()
    expect(page.locator("#update-box")).to_have_count(0)
    expect(page.locator("#edit-triggers")).to_have_value("inkwash style, sumi-e, brush")
    expect(page.locator("#edit-base-model")).to_have_value("Pony")
    body = page.evaluate(f"fetch('/api/loras/{ink.pk}/').then(r => r.json())")
    assert (body["update_ignored_versions"], body["user_overrides"]["base_model"]) == (
        [5679], True)
    page.goto(f"{lora_server}/loras/{plain_pk}/")
    expect(page.locator("#preview-video")).to_have_count(1)
    assert seen["page_errors"] == []
