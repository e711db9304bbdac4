"""Browser tests of the gallery and image pages against the real ASGI server, its embedded
worker and the real API: generate on the ``fake`` profile → gallery (hover details, filters,
mine/public, NSFW blur setting), infinite scroll, and the image page's owner actions
(tags/project/public, upscale, narrate, delete). Screenshots go to ``PAGES_SCREENSHOT_DIR``
when set (else the test's tmp dir).

Runs Debian's chromium through Playwright (never ``playwright install``).
"""

from __future__ import annotations

import io
import os
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image as PILImage
from playwright import sync_api as playwright_api  # noqa: E402

from images.models import Image
from tests.support.browser import launch, log_in

TIMEOUT_MS = 30_000
expect = playwright_api.expect
pytestmark = pytest.mark.django_db(transaction=True)


def shot(page, tmp_path, name, full_page=True):
    out = Path(os.environ.get("PAGES_SCREENSHOT_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    page.evaluate("window.scrollTo(0, 0)")  # else the sticky header lands mid-page
    page.screenshot(path=str(path), full_page=full_page)
    assert path.stat().st_size > 3_000
    return path


def png_bytes(color, size=(96, 96)) -> bytes:
    buf = io.BytesIO()
    img = PILImage.new("RGB", size, color)
    for x in range(0, size[0], 8):
        for y in range(0, size[1], 8):
            if (x + y) // 8 % 2:
                img.putpixel((x, y), (255, 255, 255))
    img.save(buf, "PNG")
    return buf.getvalue()


def make_images(user, media_root, count, **kw):
    """``count`` Image rows of ``user`` with real PNG files under ``media_root``."""
    folder = Path(media_root) / "images" / "t"
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(count):
        name = f"images/t/img{i:03d}.png"
        (Path(media_root) / name).write_bytes(png_bytes(((i * 37) % 255, 90, 160)))
        fields = dict(user=user, file=name, width=96, height=96, seed=1000 + i, steps=4,
                      guidance_scale=5.0, prompt=f"test image number {i}", provider="fake",
                      model_name="Fake")
        fields.update(kw)
        rows.append(Image.objects.create(**fields))
    return rows


@pytest.fixture
def browser_page(asgi_live_server, user, fake_profile):
    seen = {"page_errors": []}
    with playwright_api.sync_playwright() as p:
        browser = launch(p)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda exc: seen["page_errors"].append(str(exc)))
        try:
            yield page, seen
        finally:
            context.close()
            browser.close()


def generate(page, prompt, seed):
    page.fill("#id_prompt", prompt)
    page.fill("#id_seed", str(seed))
    page.click("#generate-btn")
    page.wait_for_function("document.querySelector('#progress').value === 1")
    expect(page.locator("#progress-text")).to_contain_text("done")
    expect(page.locator("#result img")).to_have_count(1)


def tiles(page):
    return page.locator("#gallery a.tile")


def test_generate_to_gallery_filters_public_and_nsfw_blur(asgi_live_server, browser_page,
                                                           tmp_path):
    page, seen = browser_page
    base = asgi_live_server
    log_in(page, base)
    generate(page, "a red fox in the snow", 11)
    generate(page, "a lighthouse at dusk", 12)

    page.goto(f"{base}/gallery/")
    expect(tiles(page)).to_have_count(2)
    expect(page.locator("#gallery-count")).to_have_text("2 images")
    # Newest first; hover shows the prompt and the parameters.
    first = tiles(page).first
    expect(first).to_have_attribute("href", re.compile(r"^/images/\d+/$"))
    first.hover()
    caption = first.locator(".tile-caption")
    page.wait_for_function(
        "el => getComputedStyle(el).opacity === '1'", arg=caption.element_handle())
    expect(caption).to_contain_text("a lighthouse at dusk")
    expect(caption).to_contain_text("seed 12")
    shot(page, tmp_path, "gallery-mine")

    # Filters reach the API and the address bar.
    page.fill("#f-lora", "no-such-lora")
    expect(tiles(page)).to_have_count(0)
    expect(page.locator("#gallery-empty")).to_be_visible()
    expect(page.locator("#gallery-empty-text")).to_contain_text("No image matches")
    assert "lora=no-such-lora" in page.url
    page.fill("#f-lora", "")
    expect(tiles(page)).to_have_count(2)
    page.select_option("#f-model", "Fake")
    expect(tiles(page)).to_have_count(2)
    assert "model=Fake" in page.url
    page.select_option("#f-model", "")

    # Nothing is public yet.
    page.click("[data-scope=public]")
    expect(tiles(page)).to_have_count(0)
    expect(page.locator("#gallery-empty-text")).to_contain_text("Nobody has published")

    # Publish the fox with tags from its page.
    page.goto(f"{base}/gallery/")
    fox = page.locator("#gallery a.tile", has_text="red fox")
    fox_href = fox.get_attribute("href")
    fox.click()  # the lightbox; its "Open page" goes to the image page
    expect(page.locator("#lightbox")).to_be_visible()
    expect(page.locator("#lb-params")).to_contain_text("a red fox in the snow")
    page.click("#lb-open")
    page.wait_for_url(f"{base}{fox_href}")
    page.fill("#o-tags", "fox, snow")
    page.check("#o-public")
    page.click("#organize-save")
    expect(page.locator("#organize-status")).to_have_text("Saved.")
    shot(page, tmp_path, "image-detail-owner")

    page.goto(f"{base}/gallery/?scope=public")
    expect(tiles(page)).to_have_count(1)
    expect(tiles(page).first).to_have_attribute("href", fox_href)
    page.goto(f"{base}/gallery/")
    expect(tiles(page)).to_have_count(2)
    expect(page.locator("#f-tag option[value=fox]")).to_have_count(1)
    page.select_option("#f-tag", "fox")
    expect(tiles(page)).to_have_count(1)
    assert "tag=fox" in page.url

    # NSFW blur: on by default for images with an NSFW level; the choice survives a reload.
    fox_id = int(fox_href.strip("/").split("/")[-1])
    status = page.evaluate(
        "id => window.Atelier.api('PATCH', '/api/images/' + id + '/', {nsfw_level: 2})"
        ".then(r => r.status)", fox_id)
    assert status == 200
    page.goto(f"{base}/gallery/")
    nsfw_img = page.locator("#gallery a.tile.nsfw img")
    expect(nsfw_img).to_have_count(1)
    page.mouse.move(0, 0)
    page.wait_for_function("el => getComputedStyle(el).filter.startsWith('blur')",
                           arg=nsfw_img.element_handle())
    shot(page, tmp_path, "gallery-nsfw-blurred")
    page.uncheck("#f-nsfw-blur")
    page.wait_for_function("el => getComputedStyle(el).filter === 'none'",
                           arg=nsfw_img.element_handle())
    page.reload()
    expect(page.locator("#f-nsfw-blur")).not_to_be_checked()
    expect(page.locator("#gallery a.tile.nsfw")).to_have_count(1)
    assert seen["page_errors"] == []


@pytest.fixture
def many_images(user, settings):
    return make_images(user, settings.MEDIA_ROOT, 145)


def test_infinite_scroll_loads_the_next_pages(asgi_live_server, many_images, browser_page,
                                              tmp_path):
    page, seen = browser_page
    base = asgi_live_server
    requests = []
    page.on("request", lambda r: "/api/images/?" in r.url and requests.append(r.url))
    log_in(page, base, next_url="/gallery/")
    expect(tiles(page)).to_have_count(100)  # 100 thumbnails per page
    expect(page.locator("#gallery-count")).to_have_text("145 images")
    page.mouse.wheel(0, 20000)
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    expect(tiles(page)).to_have_count(145)
    expect(page.locator("#gallery-status")).to_have_text("That's all.")
    assert any("page=2" in u for u in requests), requests
    assert len(requests) == 2, requests
    ids = page.eval_on_selector_all("#gallery a.tile", "els => els.map(e => e.dataset.id)")
    assert len(set(ids)) == 145
    page.set_viewport_size({"width": 420, "height": 900})
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, tmp_path, "gallery-narrow", full_page=False)
    assert seen["page_errors"] == []


@pytest.fixture
def harbour(user, settings):
    return make_images(user, settings.MEDIA_ROOT, 1, prompt="a quiet harbour at dawn")[0]


def test_image_page_edit_upscale_narrate_delete(asgi_live_server, harbour, browser_page,
                                                tmp_path):
    page, seen = browser_page
    base = asgi_live_server
    img = harbour
    log_in(page, base, next_url=f"/images/{img.pk}/")

    # img2img on the fake profile: the result is a new image derived from this one.
    page.fill("#e-prompt", "a quiet harbour at night")
    page.fill("#e-strength", "0.5")
    page.click("#edit-btn")
    edit_link = page.locator("#edit-status a.result-link")
    expect(edit_link).to_have_count(1, timeout=TIMEOUT_MS)
    edit_href = edit_link.get_attribute("href")
    assert re.match(r"^/images/\d+/$", edit_href) and edit_href != f"/images/{img.pk}/"

    page.click("#upscale-2")
    link = page.locator("#action-status a.result-link")
    expect(link).to_have_count(1, timeout=TIMEOUT_MS)
    expect(link).to_contain_text("192×192")
    up_href = link.get_attribute("href")
    assert re.match(r"^/images/\d+/$", up_href) and up_href != f"/images/{img.pk}/"

    if shutil.which("espeak-ng"):
        page.click("#narrate-btn")
        expect(page.locator("#action-status")).to_have_text("Narration ready.")
        expect(page.locator("#audio-wrap")).to_be_visible()
        duration = page.evaluate("""() => new Promise(ok => { const a =
            document.getElementById('narration-audio'); a.preload = 'auto';
            if (a.readyState >= 1) ok(a.duration); else { a.onloadedmetadata = () => ok(a.duration);
            a.onerror = () => ok(-1); a.load(); } })""")
        assert duration > 0
    else:
        page.click("#narrate-btn")
        expect(page.locator("#action-status")).to_contain_text("espeak")

    shot(page, tmp_path, "image-detail-actions")
    page.on("dialog", lambda d: d.accept())
    page.click("#delete-btn")
    page.wait_for_url(f"{base}/gallery/")
    expect(tiles(page)).to_have_count(2)  # the edited and the upscaled copies stay
    assert page.goto(f"{base}/images/{img.pk}/").status == 404
    assert seen["page_errors"] == []


@pytest.fixture
def mallorys(other_user, settings):
    private, public = make_images(other_user, settings.MEDIA_ROOT, 2)
    Image.objects.filter(pk=public.pk).update(is_public=True)
    return private, public


def test_others_private_image_is_404_and_public_is_read_only(asgi_live_server, mallorys,
                                                             browser_page):
    page, _ = browser_page
    base = asgi_live_server
    private, public = mallorys
    log_in(page, base)
    assert page.goto(f"{base}/images/{private.pk}/").status == 404
    assert page.goto(f"{base}/images/{public.pk}/").status == 200
    expect(page.locator("#owner-panel")).to_have_count(0)
    expect(page.locator("#regenerate-link")).to_be_visible()
    page.goto(f"{base}/gallery/?scope=public")
    expect(tiles(page)).to_have_count(1)
    expect(tiles(page).first.locator(".tile-meta")).to_contain_text("by mallory")
