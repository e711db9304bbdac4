"""Browser tests of the example-images section of /loras/<id>/ against the real ASGI server
(embedded worker) and the fake Civitai server: grid with NSFW blur and lightbox, "use these
settings", import through the file input, delete, and a Civitai download from the page.

Runs Debian's chromium through Playwright (tests/support/browser.py). Set
``EXAMPLES_SCREENSHOT_DIR`` to keep the screenshots.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image
from playwright import sync_api as playwright_api  # noqa: E402

from example_images.models import ExampleImage
from example_images.services.files import example_import
from tests.support.browser import launch, log_in
from tests.support.servers import start_server

TIMEOUT_MS = 20_000
expect = playwright_api.expect
pytestmark = pytest.mark.django_db(transaction=True)


def _png(color, size=(96, 128)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


class _Upload(io.BytesIO):
    def __init__(self, data: bytes, name: str):
        super().__init__(data)
        self.name, self.size = name, len(data)


@pytest.fixture
def page_setup(make_lora, user, tmp_path, settings, fake_civitai, monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the ORM checks below are
    # plain synchronous reads of the test database.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    lora = make_lora("inkwash", seed=301, version_id=301, trigger_words=("inkwash style",))
    fake_civitai.add_version(version_id=301, model_id=9301, image_count=3,
                             data=b"", hashes={"SHA256": "00"})
    rows = example_import(lora=lora, uploads=[_Upload(_png((200, 60, 60)), "a.png"),
                                              _Upload(_png((60, 60, 200)), "b.png")])
    ExampleImage.objects.filter(pk=rows[0].pk).update(prompt="red ink cat", seed=77, nsfw_level=1)
    ExampleImage.objects.filter(pk=rows[1].pk).update(prompt="blue nsfw", seed=5, nsfw_level=8)
    env = {"LORA_TRASH_DIR": str(tmp_path / "trash"), "LORA_ROOTS": str(lora.root.path),
           "EXAMPLE_IMAGES_ROOT": str(settings.EXAMPLE_IMAGES_ROOT),
           "EXAMPLE_IMAGES_PAGE_SIZE": "2", "CIVITAI_BASE_URL": fake_civitai.base_url,
           "OUTBOUND_ALLOW_PRIVATE": "1", "OUTBOUND_ALLOWED_HOSTS": "127.0.0.1,localhost"}
    with start_server(media_root=settings.MEDIA_ROOT, embedded=True, extra_env=env) as url:
        with playwright_api.sync_playwright() as p:
            browser = launch(p)
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            log_in(page, url, next_url=f"/loras/{lora.pk}/")
            try:
                yield {"page": page, "url": url, "lora": lora, "rows": rows, "errors": errors}
            finally:
                context.close()
                browser.close()


def _shot(page, tmp_path, name):
    out = Path(os.environ.get("EXAMPLES_SCREENSHOT_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out / f"{name}.png"), full_page=True)


def test_grid_blur_lightbox_import_delete(page_setup, tmp_path):
    page, lora = page_setup["page"], page_setup["lora"]
    cards = page.locator("#ex-grid .ex-card")
    expect(cards).to_have_count(2)
    expect(page.locator("#ex-count")).to_have_text("(2)")
    # The X-rated image is blurred until clicked; the other is not.
    nsfw = page.locator(f'.ex-card[data-id="{page_setup["rows"][1].pk}"]')
    expect(nsfw).to_have_class("ex-card nsfw blurred")
    nsfw.locator("img").click()
    expect(nsfw).not_to_have_class("ex-card nsfw blurred")
    # Images really load through the authenticated file view.
    assert page.evaluate("Array.from(document.querySelectorAll('#ex-grid img'))"
                         ".every(i => i.complete && i.naturalWidth === 96)") or \
        page.wait_for_function("Array.from(document.querySelectorAll('#ex-grid img'))"
                               ".every(i => i.complete && i.naturalWidth === 96)")
    # Lightbox with meta and "use these settings".
    page.locator(f'.ex-card[data-id="{page_setup["rows"][0].pk}"] img').click()
    expect(page.locator("#ex-lightbox")).to_be_visible()
    expect(page.locator("#ex-lb-params")).to_contain_text("red ink cat")
    expect(page.locator("#ex-lb-params")).to_contain_text("77")
    href = page.locator("#ex-lb-use").get_attribute("href")
    assert "prompt=red+ink+cat" in href and "seed=77" in href and "lora=inkwash" in href
    _shot(page, tmp_path, "examples-lightbox")
    page.locator("#ex-lb-close").click()
    # Import through the file input.
    page.set_input_files("#ex-file", files=[{"name": "new.png", "mimeType": "image/png",
                                             "buffer": _png((30, 160, 40))}])
    expect(cards).to_have_count(3)
    expect(page.locator("#ex-notice")).to_contain_text("Imported 1 image")
    assert ExampleImage.objects.filter(lora=lora).count() == 3
    # A file that is not an image is refused with the server's message.
    page.set_input_files("#ex-file", files=[{"name": "x.png", "mimeType": "image/png",
                                             "buffer": b"nope"}])
    expect(page.locator("#ex-error")).to_contain_text("not a readable image")
    expect(cards).to_have_count(3)
    # Delete one.
    page.once("dialog", lambda d: d.accept())
    first = page.locator(f'.ex-card[data-id="{page_setup["rows"][0].pk}"]')
    first.locator(".ex-delete").click()
    expect(cards).to_have_count(2)
    assert not ExampleImage.objects.filter(pk=page_setup["rows"][0].pk).exists()
    _shot(page, tmp_path, "examples-grid")
    assert page_setup["errors"] == []


def test_download_from_civitai_on_the_page(page_setup, tmp_path):
    page = page_setup["page"]
    page.locator("#ex-force").click()
    expect(page.locator("#ex-dl-status")).to_have_text("Download succeeded")
    expect(page.locator("#ex-grid .ex-card")).to_have_count(5)
    expect(page.locator("#ex-dl-detail")).to_contain_text("1/1 LoRAs")
    assert ExampleImage.objects.filter(source="civitai").count() == 3
    _shot(page, tmp_path, "examples-downloaded")
    assert page_setup["errors"] == []
