"""Browser tests of the library page states of issue 11 item 9 (docs/library.md): broken and
duplicate badges, two roots both called ``loras`` told apart, card hover actions, the scan
summary with each error, Civitai refresh-all, auto-organize previewed then discarded or
applied, the trash page (restore), the duplicates page (trash the others) and the downloads
page (live progress, cancel). Screenshots at 1280 px and 390×844 (``LORA_SCREENSHOT_DIR``
keeps them)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright import sync_api as playwright_api

from jobs.models import Job
from loras.models import Download, LibraryRoot, LoraModel
from loras.services.library import lora_trash
from tests.factories import JobFactory, UserFactory
from tests.loras.test_pages_browser import (  # noqa: F401 (fixtures)
    TIMEOUT_MS,
    _card,
    _shot,
    _write_lora,
    browser,
    library,
    lora_server,
)
from tests.support.browser import launch, log_in

expect = playwright_api.expect
pytestmark = pytest.mark.django_db(transaction=True)

SHA = "5e" * 32


@pytest.fixture
def two_roots(library, tmp_path):
    """A second root also named ``loras`` (another parent folder) holding one good LoRA and a
    broken file; inkwash and a copy in the second root share a SHA-256; pinup_retro has a scan
    error. Set up before the browser starts (the ORM may not run inside Playwright's loop)."""
    LibraryRoot.objects.filter(pk=library["root"].pk).update(name="loras")
    other_dir = tmp_path / "ssd" / "loras"
    other_dir.mkdir(parents=True)
    other = LibraryRoot.objects.create(name="loras", path=str(other_dir))
    _write_lora(other_dir / "inkwash_copy.safetensors")
    copy = LoraModel.objects.create(root=other, relative_path="inkwash_copy.safetensors",
                                    file_name="inkwash_copy.safetensors", name="inkwash_copy",
                                    size=(other_dir / "inkwash_copy.safetensors").stat().st_size,
                                    sha256=SHA, base_model="SDXL 1.0")
    LoraModel.objects.filter(name="inkwash").update(sha256=SHA, civitai={
        "id": 5678, "name": "v1.0", "model": {"name": "Inkwash Style", "creator": {
            "username": "inky"}}})
    LoraModel.objects.filter(name="pinup_retro").update(
        scan_error="Not a safetensors file: header length 0")
    return {"other": other, "other_dir": other_dir, "copy": copy,
            "labels": {"main": f"loras ({tmp_path.name})", "other": "loras (ssd)"}}


def _db(fn):
    """``fn()`` in a thread: the ORM may not run in Playwright's event loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result()


def _mobile(browser_page, url, tmp_path, name, check=None):
    """The same page at 390×844 on a touch phone in a new context (same cookies); ``check(page)``
    runs before the screenshot."""
    ctx = browser_page.context.browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
        storage_state=browser_page.context.storage_state())
    page = ctx.new_page()
    page.goto(url)
    if check:
        check(page)
    path = _shot(page, tmp_path, name)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    ctx.close()
    assert overflow <= 0, f"{name}: {overflow}px wider than the screen"
    return path


def test_badges_roots_and_card_actions(two_roots, lora_server, browser, library, tmp_path):
    page, seen = browser
    page.goto(f"{lora_server}/loras/")
    ink = _card(page, "inkwash")
    expect(ink.locator(".badge.dup")).to_have_text("duplicate")
    expect(_card(page, "inkwash_copy").locator(".badge.dup")).to_have_count(1)
    expect(_card(page, "alice_char").locator(".badge.dup")).to_have_count(0)
    broken = _card(page, "pinup_retro").locator(".badge.broken")
    expect(broken).to_have_text("broken")
    assert "header length 0" in broken.get_attribute("title")
    expect(ink.locator(".lora-root")).to_have_text(two_roots["labels"]["main"])
    expect(_card(page, "inkwash_copy").locator(".lora-root")).to_have_text(
        two_roots["labels"]["other"])
    labels = page.locator("#library-roots .root-label").all_inner_texts()
    assert sorted(labels) == sorted(two_roots["labels"].values())

    # hover actions: copy the tag with the preferred weight, Civitai, Generate
    ink.hover()
    expect(ink.locator(".card-actions")).to_have_css("opacity", "1")
    ink.locator(".copy-tag").click()
    assert page.evaluate("navigator.clipboard.readText()") == "<lora:inkwash:0.7>"
    assert ink.locator(".card-action.civitai").get_attribute("href") == (
        "https://civitai.com/models/1234?modelVersionId=5678")
    assert _card(page, "alice_char").locator(".card-action.civitai").count() == 0
    assert _card(page, "alice_char").locator(".copy-tag").get_attribute("data-copy") == (
        "<lora:alice_char:1>")
    _shot(page, tmp_path, "loras2-badges-1280")
    ink.locator(".to-generate").click()
    page.wait_for_url("**/?lora=inkwash:0.7")

    # the detail page names the root apart and shows Civitai's model, version and creator
    page.goto(f"{lora_server}/loras/{two_roots['copy'].pk}/")
    expect(page.locator("#info-root")).to_have_text(two_roots["labels"]["other"])
    page.goto(f"{lora_server}/loras/{library['rows']['inkwash'].pk}/")
    expect(page.locator("#civitai-model")).to_have_text("Inkwash Style")
    expect(page.locator("#civitai-version")).to_have_text("v1.0")
    expect(page.locator("#civitai-creator")).to_have_attribute("href", "https://civitai.com/user/inky")
    _shot(page, tmp_path, "loras2-detail-1280")
    def actions_shown(phone):  # no hover on a touch screen: the actions stay visible
        expect(_card(phone, "alice_char").locator(".card-actions")).to_have_css("opacity", "1")

    _mobile(page, f"{lora_server}/loras/", tmp_path, "loras2-badges-390", check=actions_shown)
    assert seen["page_errors"] == []


def test_scan_summary_lists_each_error(two_roots, lora_server, browser, tmp_path):
    page, seen = browser
    _write_lora(two_roots["other_dir"] / "fresh_one.safetensors")
    (two_roots["other_dir"] / "corrupt.safetensors").write_bytes(b"\x00" * 64)
    page.evaluate("window.__beforeScan = true")
    page.click("#scan-btn")
    page.wait_for_function("window.__beforeScan === undefined", timeout=60_000)
    summary = page.locator("#scan-summary")
    expect(summary).to_be_visible()
    text = page.locator("#scan-summary-text").inner_text()
    assert "2 new" in text and "1 error" in text, text  # corrupt.safetensors is listed too
    errors = page.locator("#scan-summary-errors li").all_inner_texts()
    assert len(errors) == 1 and errors[0].startswith("corrupt.safetensors — "), errors
    _shot(page, tmp_path, "loras2-scan-summary-1280")
    page.click("#scan-summary-close")
    expect(summary).to_be_hidden()
    page.reload()  # shown once
    expect(summary).to_be_hidden()
    assert seen["page_errors"] == []


def test_refresh_all_and_organize_plan(lora_server, browser, library, tmp_path):
    page, seen = browser
    page.click("#refresh-all-btn")
    # the fake Civitai knows no hash (404): every LoRA is "not on Civitai"
    expect(page.locator("#lora-notice")).to_contain_text(
        # inkwash has a SHA-256 Civitai does not know; the three others are not hashed yet
        "Civitai refresh done: 0 updated, 1 not on Civitai, 3 failed.", timeout=60_000)

    page.click("#organize-btn")
    plan = page.locator("#organize-plan")
    expect(plan).to_be_visible()
    rows = page.locator("#organize-moves tr")
    assert rows.count() >= 1
    first = rows.first.locator("td").all_inner_texts()
    assert first[1] == "→" and first[0] != first[2]
    _shot(page, tmp_path, "loras2-organize-plan-1280")
    page.click("#organize-discard")
    expect(plan).to_be_hidden()
    moves = rows.count()
    page.click("#organize-btn")
    page.click("#organize-apply")
    expect(page.locator("#lora-notice")).to_contain_text(f"Organized: {moves} moved",
                                                         timeout=60_000)
    assert seen["page_errors"] == []


def test_trash_page_restores(library, lora_server, browser, tmp_path):
    ink = library["rows"]["inkwash"]
    page, seen = browser
    # trashed through the page's own API (the ORM may not run inside Playwright's loop)
    page.goto(f"{lora_server}/loras/{ink.pk}/")
    page.click("#delete-btn")
    page.click("#confirm-ok")
    expect(page.locator("#undo-btn")).to_be_visible()
    page.goto(f"{lora_server}/loras/trash/")
    row = page.locator('.trash-row[data-name="inkwash"]')
    expect(row).to_contain_text("styles/inkwash.safetensors")
    expect(page.locator("#trash-policy")).to_contain_text("no retention period")
    _shot(page, tmp_path, "loras2-trash-1280")
    _mobile(page, f"{lora_server}/loras/trash/", tmp_path, "loras2-trash-390")
    row.locator(".restore-btn").click()
    expect(page.locator("#lora-notice")).to_contain_text("inkwash is back in the library")
    page.reload()
    expect(page.locator("#trash-empty")).to_be_visible()
    assert (library["dir"] / "styles" / "inkwash.safetensors").exists()
    assert seen["page_errors"] == []


def test_a_reader_sees_no_restore_refresh_or_apply(library, lora_server, tmp_path, settings):
    settings.LORA_TRASH_DIR = tmp_path / "trash"  # the server's (lora_server's env)
    bob = UserFactory(username="bob")
    lora_trash(lora=library["rows"]["alice_char"])
    with playwright_api.sync_playwright() as p:
        b = launch(p)
        page = b.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.set_default_timeout(TIMEOUT_MS)
        log_in(page, lora_server, username=bob.username, next_url="/loras/trash/")
        expect(page.locator('.trash-row[data-name="alice_char"]')).to_be_visible()
        assert page.locator(".restore-btn").count() == 0
        expect(page.locator("#manage-hint")).to_be_visible()
        page.goto(f"{lora_server}/loras/duplicates/")
        expect(page.locator("#dup-empty")).to_be_visible()
        # the list: no Civitai refresh; the organize plan is readable but not appliable
        page.goto(f"{lora_server}/loras/")
        assert page.locator("#refresh-all-btn, #link-downloads, #organize-apply").count() == 0
        page.click("#organize-btn")
        expect(page.locator("#organize-moves tr").first).to_be_visible()
        _shot(page, tmp_path, "loras2-reader-plan-1280")
        b.close()


def test_duplicates_page_trashes_the_others(two_roots, lora_server, browser, tmp_path):
    page, seen = browser
    page.goto(f"{lora_server}/loras/duplicates/")
    group = page.locator(f"#sha-{SHA}")
    expect(group.locator(".dup-row")).to_have_count(2)
    expect(group.locator(".root-label").first).to_have_text(two_roots["labels"]["main"])
    _shot(page, tmp_path, "loras2-duplicates-1280")
    _mobile(page, f"{lora_server}/loras/duplicates/", tmp_path, "loras2-duplicates-390")
    # keep the copy in the second root instead of the proposed (oldest) one
    group.locator(f'.keep-radio[value="{two_roots["copy"].pk}"]').check()
    page.once("dialog", lambda d: d.accept())
    group.locator(".trash-others").click()
    expect(page.locator("#lora-notice")).to_have_text("1 moved to the trash.")
    expect(group.locator(".dup-row.trashed")).to_have_count(1)
    page.reload()
    expect(page.locator("#dup-empty")).to_be_visible()
    statuses = _db(lambda: dict(LoraModel.objects.filter(name__startswith="inkwash")
                                .values_list("name", "status")))
    assert statuses == {"inkwash": "trashed", "inkwash_copy": "present"}
    assert seen["page_errors"] == []


@pytest.fixture
def downloads(library, user):
    """A paused download at 30 % (nothing runs it) and a finished one."""
    paused = JobFactory(kind="lora_download", user=user, status="paused", progress=0.3)
    done = JobFactory(kind="lora_download", user=user, finished=True, progress=1.0)
    common = dict(user=user, root=library["root"], source_url="https://civitai.com/api/download/models/1")
    d1 = Download.objects.create(job=paused, file_name="big_style.safetensors",
                                 total_bytes=10 * 1024 * 1024, downloaded_bytes=3 * 1024 * 1024,
                                 target_folder="styles", **common)
    d2 = Download.objects.create(job=done, file_name="small.safetensors", total_bytes=2048,
                                 downloaded_bytes=2048, **common)
    return {"paused": d1, "done": d2}


def test_downloads_page_progress_and_cancel(downloads, lora_server, browser, tmp_path):
    page, seen = browser
    page.goto(f"{lora_server}/loras/downloads/")
    row = page.locator(f'.download-row[data-id="{downloads["paused"].pk}"]')
    expect(row.locator(".dl-text")).to_contain_text("3.0 MB of 10.0 MB (30%)")
    done = page.locator(f'.download-row[data-id="{downloads["done"].pk}"]')
    expect(done.locator(".dl-text")).to_contain_text("succeeded")
    expect(done.locator(".cancel-btn")).to_be_hidden()
    _shot(page, tmp_path, "loras2-downloads-1280")
    _mobile(page, f"{lora_server}/loras/downloads/", tmp_path, "loras2-downloads-390")
    row.locator(".cancel-btn").click()
    expect(row.locator(".dl-text")).to_contain_text("canceled")
    expect(row.locator(".cancel-btn")).to_be_hidden()
    assert _db(lambda: Job.objects.get(pk=downloads["paused"].job_id).status) == "canceled"
    assert seen["page_errors"] == []
