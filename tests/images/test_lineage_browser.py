"""Browser test of lineage on the image detail page (issue 15) against the real ASGI server with
its embedded worker: upscale and edit from a txt2img made with a LoRA, follow the links both
ways, and "Generate again" on the upscale (re-upscales the same source) and on the edit (same
source, same LoRA). Screenshots go to ``LINEAGE_SCREENSHOT_DIR`` (else the test's tmp dir)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright import sync_api as playwright_api

from tests.support.browser import launch, log_in

JOB_TIMEOUT_MS = 30_000
expect = playwright_api.expect
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def source_image(user, fake_profile):
    """A txt2img of ``user`` made through the services with a LoRA picked in the LoRA field."""
    from images.models import Image
    from images.services import generation_create, generation_run
    from tests.factories import LoraFactory

    LoraFactory(name="warm-light")
    request = generation_create(user=user, enqueue=False, params={
        "prompt": "a lighthouse at dusk", "seed": 42, "steps": 8, "width": 64, "height": 64,
        "loras": [{"lora": "warm-light", "weight": 0.7}]})
    assert generation_run(request_id=request.pk).status == "succeeded"
    return Image.objects.get(request=request).pk


def _shot(page, tmp_path, name) -> Path:
    out = Path(os.environ.get("LINEAGE_SCREENSHOT_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 5_000
    return path


def _open_result(page, status_id: str, base: str) -> int:
    """Wait for the 'open result' link in ``#status_id``, follow it; the new image's id."""
    link = page.locator(f"#{status_id} a.result-link").first
    expect(link).to_be_visible(timeout=JOB_TIMEOUT_MS)
    link.click()
    page.wait_for_url(re.compile(rf"^{re.escape(base)}/images/\d+/$"))
    return int(page.url.rstrip("/").rsplit("/", 1)[1])


def test_lineage_links_and_generate_again_for_an_upscale_and_an_edit(
        asgi_live_server, user, source_image, tmp_path):
    base, src = asgi_live_server, source_image
    errors: list[str] = []
    with playwright_api.sync_playwright() as p:
        browser = launch(p)
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.set_default_timeout(JOB_TIMEOUT_MS)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            log_in(page, base, user.username, next_url=f"/images/{src}/")
            expect(page.locator("#param-operation")).to_have_text("txt2img")
            expect(page.locator("#param-source")).to_have_count(0)
            # The edit form carries the image's LoRA, ticked.
            expect(page.locator("#e-loras input[data-lora]")).to_be_checked()
            expect(page.locator("#e-loras")).to_contain_text("warm-light")

            # Upscale x2, open it: its operation, upscaler and source link; no Steps/Provider.
            page.click("#upscale-2")
            up = _open_result(page, "action-status", base)
            expect(page.locator("#param-operation")).to_have_text("upscale ×2")
            expect(page.locator("#param-upscaler")).to_contain_text("Lanczos")
            expect(page.locator("#params")).not_to_contain_text("Steps")
            expect(page.locator("#params")).not_to_contain_text("diffusers")
            expect(page.locator("#source-link")).to_have_attribute("href", f"/images/{src}/")
            expect(page.locator("#params")).to_contain_text("128×128")
            _shot(page, tmp_path, "lineage-upscale-detail")

            # Generate again re-upscales the same source (not a 1-step txt2img of this one).
            expect(page.locator("#again-btn")).to_have_text("Generate again (upscale)")
            page.click("#again-btn")
            up2 = _open_result(page, "again-status", base)
            assert up2 != up
            expect(page.locator("#param-operation")).to_have_text("upscale ×2")
            expect(page.locator("#source-link")).to_have_attribute("href", f"/images/{src}/")
            expect(page.locator("#params")).to_contain_text("128×128")

            # The source lists both upscales; the links lead there.
            page.click("#source-link")
            page.wait_for_url(f"{base}/images/{src}/")
            derived = page.locator("#param-derived a.derived-link")
            expect(derived).to_have_count(2)
            expect(derived.nth(0)).to_have_attribute("href", f"/images/{up}/")
            expect(derived.nth(1)).to_have_attribute("href", f"/images/{up2}/")
            expect(derived.nth(0)).to_contain_text("upscale")

            # Edit (img2img) with the LoRA kept; the result says so and links its source.
            page.fill("#e-prompt", "a lighthouse at dawn")
            page.fill("#e-strength", "0.5")
            page.click("#edit-btn")
            edit = _open_result(page, "edit-status", base)
            expect(page.locator("#param-operation")).to_have_text("img2img")
            expect(page.locator("#source-link")).to_have_attribute("href", f"/images/{src}/")
            expect(page.locator("#params .lora-tag-name")).to_have_text("warm-light")
            # the profile's default 4 steps; img2img runs int(4 x 0.5) of them
            expect(page.locator("#param-steps")).to_have_text(
                "4 (2 run at denoising strength 0.5)")
            _shot(page, tmp_path, "lineage-edit-detail")

            # Generate again repeats the edit: same source, same LoRA, same prompt.
            expect(page.locator("#again-btn")).to_have_text("Generate again (img2img)")
            page.click("#again-btn")
            edit2 = _open_result(page, "again-status", base)
            assert edit2 != edit
            expect(page.locator("#param-operation")).to_have_text("img2img")
            expect(page.locator("#source-link")).to_have_attribute("href", f"/images/{src}/")
            expect(page.locator("#params .lora-tag-name")).to_have_text("warm-light")
            expect(page.locator("#param-prompt")).to_have_text("a lighthouse at dawn")

            page.goto(f"{base}/images/{src}/")
            expect(page.locator("#param-derived a.derived-link")).to_have_count(4)
            _shot(page, tmp_path, "lineage-source-detail")
        finally:
            browser.close()
    assert errors == []
