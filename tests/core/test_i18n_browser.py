"""The language switcher in a browser (issue 15, languages): choosing 日本語 reloads the page in
Japanese, the choice is kept in Django's language cookie for the next pages although the browser
asks for English, and 简体中文 switches again. Screenshots of the generate page and the gallery
in both languages go to ``$PAGES_SCREENSHOT_DIR`` (else the test's tmp dir)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from django.conf import settings
from playwright import sync_api as playwright_api

from images.models import Project
from tests.factories import ImageFactory
from tests.support.browser import launch, log_in

expect = playwright_api.expect
pytestmark = pytest.mark.django_db(transaction=True)

DESKTOP = {"width": 1280, "height": 900}
_THUMBS_LOADED = ("() => [...document.querySelectorAll('#gallery img')]"
                  ".filter(i => i.complete && i.naturalWidth > 0).length >= 3")


def _shots_dir(tmp_path) -> Path:
    out = Path(os.environ.get("PAGES_SCREENSHOT_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _language_cookie(context) -> str | None:
    for cookie in context.cookies():
        if cookie["name"] == settings.LANGUAGE_COOKIE_NAME:
            return cookie["value"]
    return None


def test_switcher_remembers_the_language(asgi_live_server, user, fake_profile, tmp_path):
    base = asgi_live_server
    images = [ImageFactory(user=user, prompt=f"a lighthouse at night, stormy sea {i}")
              for i in range(3)]
    Project.objects.create(owner=user, name="Harbours", is_public=True)
    shots = _shots_dir(tmp_path)
    with playwright_api.sync_playwright() as p:
        browser = launch(p)
        # The browser asks for English: the cookie must win over Accept-Language.
        context = browser.new_context(viewport=DESKTOP, locale="en-US")
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            log_in(page, base, next_url="/gallery/")
            expect(page.locator("html")).to_have_attribute("lang", "en")
            expect(page.locator("#site-nav a[href='/gallery/']")).to_have_text("Gallery")
            assert _language_cookie(context) is None

            with page.expect_navigation():
                page.select_option("#lang-switch select[name=language]", "ja")
            assert page.url == f"{base}/gallery/"  # back where the choice was made
            expect(page.locator("html")).to_have_attribute("lang", "ja")
            expect(page.locator("#site-nav a[href='/gallery/']")).to_have_text("ギャラリー")
            expect(page.locator("h1")).to_have_text("ギャラリー")
            assert _language_cookie(context) == "ja"
            page.wait_for_function(_THUMBS_LOADED)
            # Strings written by gallery.js come from the JavaScript catalog (/jsi18n/).
            expect(page.locator("#gallery-count")).to_have_text("3 枚")
            expect(page.locator("#gallery-status")).to_have_text("以上です。")
            page.click("#select-mode")  # gallery_select.js: the bulk bar's counts
            expect(page.locator("#bulk-count")).to_have_text("0 件選択")
            expect(page.locator("#bulk-all")).to_have_text("読み込み済みをすべて選択（3）")
            page.click("#select-mode")
            page.locator("#gallery a.tile").first.click()  # gallery_lightbox.js
            expect(page.locator("#lightbox")).to_be_visible()
            expect(page.locator("#lb-params dt").first).to_have_text("プロンプト")
            expect(page.locator("#lb-params")).to_contain_text("シード")
            # The date in the page's language (the browser's own locale is en-US).
            expect(page.locator("#lb-params")).to_contain_text(
                re.compile(r"\d{4}/\d{1,2}/\d{1,2} "))
            expect(page.locator("#lb-pos")).to_have_text("1 枚目 / 読み込み済み 3 枚")
            page.screenshot(path=str(shots / "gallery-lightbox-ja-desktop.png"))
            page.keyboard.press("Escape")
            expect(page.locator("#lightbox")).to_be_hidden()
            page.screenshot(path=str(shots / "gallery-ja-desktop.png"))

            page.goto(f"{base}/")  # a later page, same language
            expect(page.locator("html")).to_have_attribute("lang", "ja")
            expect(page.locator("label[for=id_sampler]")).to_have_text("サンプラー")
            expect(page.locator("#generate-btn")).to_have_text("生成")
            expect(page.locator("#lang-switch select")).to_have_value("ja")
            # Capability chips are written by generate.js from the JavaScript catalog.
            expect(page.locator("#profile-caps [data-cap=seed]")).to_have_text("✓ シード")
            expect(page.locator("#profile-caps")).to_contain_text("バッチ ≤ 8")
            page.screenshot(path=str(shots / "generate-ja-desktop.png"), full_page=True)

            page.goto(f"{base}/projects/")  # projects.js
            expect(page.locator("#projects-count")).to_have_text("1 件のプロジェクト")
            card = page.locator(".project-card", has_text="Harbours")
            expect(card).to_contain_text("0 枚 · 公開")
            page.goto(f"{base}/images/{images[0].pk}/")  # image_detail.js
            page.click("#organize-save")
            expect(page.locator("#organize-status")).to_have_text("保存しました。")
            page.goto(f"{base}/")

            with page.expect_navigation():
                page.select_option("#lang-switch select[name=language]", "zh-hans")
            assert page.url == f"{base}/"
            expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
            expect(page.locator("label[for=id_sampler]")).to_have_text("采样器")
            expect(page.locator("#profile-caps [data-cap=seed]")).to_have_text("✓ 种子")
            assert _language_cookie(context) == "zh-hans"
            page.screenshot(path=str(shots / "generate-zh-hans-desktop.png"), full_page=True)
            page.goto(f"{base}/gallery/")
            expect(page.locator("h1")).to_have_text("图库")
            page.wait_for_function(_THUMBS_LOADED)
            expect(page.locator("#gallery-count")).to_have_text("3 张图像")
            page.screenshot(path=str(shots / "gallery-zh-hans-desktop.png"))

            with page.expect_navigation():
                page.select_option("#lang-switch select[name=language]", "en")
            expect(page.locator("h1")).to_have_text("Gallery")
            expect(page.locator("#gallery-count")).to_have_text("3 images")
            assert errors == []
        finally:
            browser.close()
