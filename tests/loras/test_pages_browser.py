"""Browser tests of the LoRA library pages against the real ASGI server (and the real API):
cards from the database, search, NSFW blur setting, favorite toggle, copy trigger words, bulk
delete with undo, the detail page editors and "use in generate"; screenshots at 1280 and 420 px.

Runs Debian's chromium through Playwright (never ``playwright install``), like
``tests/images/test_pages_browser.py``. Set ``LORA_SCREENSHOT_DIR`` to keep the screenshots.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from playwright import sync_api as playwright_api  # noqa: E402
from safetensors.numpy import save_file

from loras.models import LibraryRoot, LoraModel
from tests.support.browser import launch, log_in
from tests.support.servers import start_server

TIMEOUT_MS = 20_000

expect = playwright_api.expect
pytestmark = pytest.mark.django_db(transaction=True)


def _png(color_a, color_b, size=(192, 256)) -> bytes:
    img = Image.new("RGB", size, color_a)
    draw = ImageDraw.Draw(img)
    for y in range(size[1]):
        t = y / size[1]
        draw.line([(0, y), (size[0], y)],
                  fill=tuple(int(a + (b - a) * t) for a, b in zip(color_a, color_b, strict=True)))
    draw.ellipse([size[0] * .25, size[1] * .3, size[0] * .75, size[1] * .65], fill=color_b)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _write_lora(path: Path) -> None:
    """A small kohya-layout LoRA (SD 1.x text-encoder width 768, rank 4), random weights."""
    rng = np.random.default_rng()
    key = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"
    save_file({f"{key}.lora_down.weight": rng.standard_normal((4, 768), dtype=np.float32)
               .astype(np.float16),
               f"{key}.lora_up.weight": np.zeros((320, 4), dtype=np.float16),
               f"{key}.alpha": np.array(4.0, dtype=np.float16)},
              str(path), metadata={"ss_network_module": "networks.lora"})


@pytest.fixture
def library(transactional_db, tmp_path):
    """A root on disk with four LoRA files (and two previews) plus their rows."""
    root_dir = tmp_path / "loras"
    (root_dir / "styles").mkdir(parents=True)
    (root_dir / "characters").mkdir()
    root = LibraryRoot.objects.create(name="main", path=str(root_dir))
    specs = [
        dict(name="inkwash", folder="styles", base_model="SDXL 1.0", nsfw_level=1,
             trigger_words=["inkwash style", "sumi-e"], tags=["style", "ink"],
             preview=((20, 40, 90), (200, 220, 255)), preferred_weight=0.7,
             sha256="ab12cd34ef" + "0" * 54, autov3="f" * 64, network_module="networks.lora",
             network_rank=16, network_alpha=8.0, civitai_model_id=1234, civitai_version_id=5678,
             header_metadata={"ss_base_model_version": "sdxl_base_v1-0", "ss_network_dim": "16"}),
        dict(name="pinup_retro", folder="styles", base_model="SD 1.5", nsfw_level=8,
             trigger_words=["pinup"], preview=((90, 20, 40), (255, 200, 120))),
        dict(name="alice_char", folder="characters", base_model="Flux.1 D",
             trigger_words=["alice, blue dress"]),
        dict(name="plain_detail", folder="", base_model="", trigger_words=[]),
    ]
    rows = {}
    for spec in specs:
        preview = spec.pop("preview", None)
        folder = spec["folder"]
        rel = f"{folder}/{spec['name']}.safetensors" if folder else f"{spec['name']}.safetensors"
        path = root_dir / rel
        _write_lora(path)
        preview_rel = ""
        if preview:
            preview_rel = rel.replace(".safetensors", ".preview.png")
            (root_dir / preview_rel).write_bytes(_png(*preview))
        rows[spec["name"]] = LoraModel.objects.create(
            root=root, relative_path=rel, file_name=path.name, size=path.stat().st_size,
            preview=preview_rel, **spec)
    return {"root": root, "dir": root_dir, "rows": rows}


@pytest.fixture
def lora_server(library, user, tmp_path, httpserver):
    """The real server, with the trash and roots inside this test's tmp dir and Civitai
    played by a local server that knows no hash (404, as in
    docs/protocols.md#civitai-endpoints-and-auth)."""
    from django.conf import settings

    httpserver.expect_request(re.compile(r"^/api/v1/.*")).respond_with_json(
        {"error": "Model not found"}, status=404)
    env = {"LORA_TRASH_DIR": str(tmp_path / "trash"), "LORA_ROOTS": str(library["dir"]),
           "CIVITAI_BASE_URL": httpserver.url_for("/").rstrip("/"),
           "OUTBOUND_ALLOW_PRIVATE": "1"}
    with start_server(media_root=settings.MEDIA_ROOT, embedded=True, extra_env=env) as url:
        yield url


@pytest.fixture
def browser(lora_server):
    """A logged-in chromium page plus the page errors it saw."""
    seen = {"page_errors": []}
    with playwright_api.sync_playwright() as p:
        browser = launch(p)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=lora_server)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda exc: seen["page_errors"].append(str(exc)))
        log_in(page, lora_server, next_url="/loras/")
        try:
            yield page, seen
        finally:
            context.close()
            browser.close()


def _shot(page, tmp_path, name):
    out = Path(os.environ.get("LORA_SCREENSHOT_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    page.evaluate("window.scrollTo(0, 0)")  # else the sticky header lands mid-page
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 5_000
    return path


def _card(page, name):
    return page.locator(f'.lora-card[data-name="{name}"]')


def _wait_blurred(page, blurred: bool):
    """Wait until the NSFW card's preview is (not) blurred (the filter has a transition)."""
    page.wait_for_function(
        "want => { const f = getComputedStyle(document.querySelector("
        "'.lora-card[data-name=\"pinup_retro\"] img')).filter;"
        " return want ? f.startsWith('blur(18px)') : f === 'none'; }", arg=blurred)


def test_grid_search_blur_favorite_copy_and_screenshots(lora_server, browser, library, tmp_path):
    page, seen = browser
    base = lora_server
    cards = page.locator("#lora-grid .lora-card")
    expect(cards).to_have_count(4)
    expect(page.locator("#lora-count")).to_have_text("4 LoRAs")
    # Previews load through the API; the card without one shows its base model instead.
    page.wait_for_function("() => [...document.querySelectorAll('#lora-grid img')]"
                           ".every(i => i.complete && i.naturalWidth === 192)")
    expect(_card(page, "alice_char").locator(".lora-placeholder")).to_have_text("Flux.1 D")
    expect(_card(page, "inkwash").locator(".badge")).to_have_text("SDXL 1.0")

    # NSFW blur: on by default for level >= 4, off and remembered across reloads, on again.
    expect(page.locator("#blur-nsfw")).to_be_checked()
    expect(_card(page, "pinup_retro")).to_have_class(re.compile(r"\bnsfw\b"))
    expect(_card(page, "inkwash")).not_to_have_class(re.compile(r"\bnsfw\b"))
    _wait_blurred(page, True)
    assert page.evaluate("el => getComputedStyle(el).filter", page.locator(
        '.lora-card[data-name="inkwash"] img').element_handle()) == "none"
    _shot(page, tmp_path, "loras-list-1280")
    page.set_viewport_size({"width": 420, "height": 900})
    assert page.evaluate("document.documentElement.scrollWidth") <= 420
    _shot(page, tmp_path, "loras-list-420")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.uncheck("#blur-nsfw")
    _wait_blurred(page, False)
    page.reload()
    expect(page.locator("#blur-nsfw")).not_to_be_checked()
    _wait_blurred(page, False)
    page.check("#blur-nsfw")
    _wait_blurred(page, True)

    # Trigger words copy on click.
    _card(page, "alice_char").locator("button.trigger").click()
    expect(_card(page, "alice_char").locator("button.trigger")).to_have_class(
        re.compile(r"\bcopied\b"))
    assert page.evaluate("navigator.clipboard.readText()") == "alice, blue dress"

    # Favorite toggle: PATCH through the API; the favorites filter (server side) agrees.
    star = _card(page, "alice_char").locator(".fav-toggle")
    expect(star).to_have_attribute("aria-pressed", "false")
    with page.expect_response(lambda r: r.request.method == "PATCH") as resp:
        star.click()
    assert resp.value.status == 200
    expect(star).to_have_attribute("aria-pressed", "true")
    expect(star).to_have_text("★")
    page.check("#f-favorite")  # auto-submits
    page.wait_for_url(re.compile(r"favorite=true"))
    expect(cards).to_have_count(1)
    expect(cards.first).to_have_attribute("data-name", "alice_char")

    # Search narrows the grid through the server-side GET parameters; the base model too.
    page.goto(f"{base}/loras/")
    page.fill("#f-search", "sumi")
    page.press("#f-search", "Enter")
    page.wait_for_url(re.compile(r"\?search=sumi"))
    expect(cards).to_have_count(1)
    expect(cards.first).to_have_attribute("data-name", "inkwash")
    page.goto(f"{base}/loras/")
    page.select_option("#f-base-model", "SD 1.5")
    page.wait_for_url(re.compile(r"base_model=SD\+1\.5"))
    expect(cards).to_have_count(1)
    expect(cards.first).to_have_attribute("data-name", "pinup_retro")
    page.fill("#f-search", "no-such-lora")
    page.press("#f-search", "Enter")
    expect(page.locator("#lora-none")).to_be_visible()
    assert seen["page_errors"] == []


def test_bulk_delete_with_confirm_and_undo(lora_server, browser, library, tmp_path):
    page, seen = browser
    root_dir = library["dir"]
    cards = page.locator("#lora-grid .lora-card")
    expect(cards).to_have_count(4)
    expect(page.locator("#bulk-bar")).to_be_hidden()
    _card(page, "alice_char").locator(".lora-check").check()
    _card(page, "plain_detail").locator(".lora-check").check()
    expect(page.locator("#bulk-bar")).to_be_visible()
    expect(page.locator("#bulk-count")).to_have_text("2 selected")
    _shot(page, tmp_path, "loras-bulk-1280")

    # Cancel in the dialog: nothing happens.
    page.click("#bulk-delete-btn")
    expect(page.locator("#confirm-delete")).to_be_visible()
    expect(page.locator("#confirm-delete")).to_contain_text("trash")
    page.screenshot(path=str(Path(os.environ.get("LORA_SCREENSHOT_DIR") or tmp_path)
                             / "loras-confirm-1280.png"))
    page.click("#confirm-cancel")
    expect(cards).to_have_count(4)
    assert (root_dir / "characters/alice_char.safetensors").exists()

    expect(page.locator("#lora-count")).to_have_text("4 LoRAs")
    page.click("#bulk-delete-btn")
    page.click("#confirm-ok")
    expect(page.locator("#lora-notice")).to_contain_text("2 moved to the trash.")
    expect(page.locator("#undo-btn")).to_be_visible()
    expect(cards).to_have_count(2)
    expect(page.locator("#lora-count")).to_have_text("2 LoRAs")  # counts follow the delete
    expect(page.locator("#bulk-bar")).to_be_hidden()
    assert not (root_dir / "characters/alice_char.safetensors").exists()
    assert not (root_dir / "plain_detail.safetensors").exists()
    page.reload()
    expect(cards).to_have_count(2)

    # Undo from the notice restores the file and its preview.
    _card(page, "inkwash").locator(".lora-check").check()
    page.click("#bulk-delete-btn")
    page.click("#confirm-ok")
    expect(cards).to_have_count(1)
    assert not (root_dir / "styles/inkwash.safetensors").exists()
    assert not (root_dir / "styles/inkwash.preview.png").exists()  # sidecars go with it
    page.click("#undo-btn")
    page.wait_for_load_state("load")
    expect(cards).to_have_count(2)
    expect(_card(page, "inkwash")).to_have_count(1)
    assert (root_dir / "styles/inkwash.safetensors").exists()
    assert (root_dir / "styles/inkwash.preview.png").exists()

    # Bulk move into a new folder: the card shows it, the file and its preview moved.
    _card(page, "inkwash").locator(".lora-check").check()
    page.fill("#bulk-folder", "archive/2024")
    page.click("#bulk-move-btn")
    expect(page.locator("#lora-notice")).to_contain_text("1 moved to archive/2024.")
    expect(_card(page, "inkwash").locator(".lora-folder")).to_have_text("archive/2024")
    expect(page.locator("#bulk-bar")).to_be_hidden()
    assert (root_dir / "archive/2024/inkwash.safetensors").exists()
    assert (root_dir / "archive/2024/inkwash.preview.png").exists()
    assert not (root_dir / "styles/inkwash.safetensors").exists()
    assert seen["page_errors"] == []


def test_detail_page_content_editors_and_use_in_generate(lora_server, browser, library, tmp_path):
    page, seen = browser
    base = lora_server
    lora = library["rows"]["inkwash"]
    page.click('.lora-card[data-name="inkwash"] .lora-name')
    page.wait_for_url(f"{base}/loras/{lora.pk}/")
    expect(page.locator("#lora-name")).to_have_text("inkwash")
    expect(page.locator("#info-file")).to_have_text("styles/inkwash.safetensors")
    expect(page.locator("#info-root")).to_have_text("main")
    expect(page.locator("#info-network")).to_have_text("networks.lora · rank 16 · alpha 8")
    expect(page.locator("#hash-autov2")).to_have_text("ab12cd34ef")
    expect(page.locator("#hash-autov3")).to_have_text("f" * 64)
    expect(page.locator("#civitai-link")).to_have_attribute(
        "href", "https://civitai.com/models/1234?modelVersionId=5678")
    page.wait_for_function("() => { const i = document.getElementById('preview-img');"
                           " return i.complete && i.naturalWidth === 192; }")
    # Header metadata is collapsed until opened.
    expect(page.locator("#header-meta td").first).to_be_hidden()
    page.click("#header-meta summary")
    expect(page.locator("#header-meta")).to_contain_text("sdxl_base_v1-0")

    # Hash copy button.
    page.locator(".hash-row button.copy").nth(1).click()
    assert page.evaluate("navigator.clipboard.readText()") == "ab12cd34ef"

    # Tags, notes and preferred weight saved with PATCH, still there after a reload.
    page.fill("#edit-tags", "style, ink,  watercolor ")
    page.fill("#edit-notes", "best at 0.6 with a paper texture")
    page.fill("#edit-weight", "0.6")
    page.click("#save-btn")
    expect(page.locator("#save-state")).to_have_text("Saved")
    page.reload()
    expect(page.locator("#edit-tags")).to_have_value("style, ink, watercolor")
    expect(page.locator("#edit-notes")).to_have_value("best at 0.6 with a paper texture")
    expect(page.locator("#edit-weight")).to_have_value("0.6")
    _shot(page, tmp_path, "lora-detail-1280")
    page.set_viewport_size({"width": 420, "height": 900})
    assert page.evaluate("document.documentElement.scrollWidth") <= 420
    _shot(page, tmp_path, "lora-detail-420")
    page.set_viewport_size({"width": 1280, "height": 900})

    # Civitai does not know the file: the refresh shows the API's message.
    page.click("#civitai-refresh")
    expect(page.locator("#lora-error")).to_contain_text("Civitai knows no model version")
    expect(page.locator("#civitai-refresh")).to_be_enabled()

    # A rename the API refuses shows its message.
    page.fill("#rename-input", "bad/name")
    page.click("#rename-btn")
    expect(page.locator("#lora-error")).to_be_visible()
    assert page.locator("#lora-error").inner_text().strip() != ""

    # Rename: file and preview renamed together, the page shows the new name.
    page.fill("#rename-input", "inkwash_v2")
    page.click("#rename-btn")
    expect(page.locator("#lora-name")).to_have_text("inkwash_v2")
    assert (library["dir"] / "styles/inkwash_v2.safetensors").exists()
    assert (library["dir"] / "styles/inkwash_v2.preview.png").exists()
    page.wait_for_load_state("load")  # the reloaded page's scripts have run (buttons wired)

    # Delete (confirmed) then Undo: the file goes to the trash and comes back.
    page.click("#delete-btn")
    page.click("#confirm-ok")
    expect(page.locator("#lora-notice")).to_contain_text("Moved to the trash.")
    assert not (library["dir"] / "styles/inkwash_v2.safetensors").exists()
    expect(page.locator("#rename-btn")).to_be_disabled()
    page.click("#undo-btn")
    expect(page.locator("#rename-btn")).to_be_enabled()  # reloaded
    expect(page.locator("#lora-status")).to_have_count(0)  # present again
    assert (library["dir"] / "styles/inkwash_v2.safetensors").exists()

    # "Use in generate" opens the generate page with the LoRA at its preferred weight.
    page.click("#use-in-generate")
    page.wait_for_url(f"{base}/?lora=inkwash_v2:0.6")
    expect(page.locator("#lora-list .lora-name")).to_have_value("inkwash_v2")
    expect(page.locator("#lora-list .lora-weight-value")).to_have_text("0.60")
    assert seen["page_errors"] == []


def test_scan_button_follows_the_job_and_reloads_with_new_files(lora_server, browser, library):
    page, seen = browser
    _write_lora(library["dir"] / "characters" / "fresh_find.safetensors")
    frames = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(payload)))
    page.evaluate("window.__beforeScan = true")
    page.click("#scan-btn")
    # The progress bar shows while the job runs; a small library scans faster than a check of
    # it could see, so what is asserted is the job's events and the reload it ends with.
    page.wait_for_function("window.__beforeScan === undefined", timeout=60_000)
    expect(_card(page, "fresh_find")).to_have_count(1)
    expect(page.locator("#lora-grid .lora-card")).to_have_count(5)
    assert any('"succeeded"' in str(f) for f in frames), frames[-3:]
    assert seen["page_errors"] == []


@pytest.fixture
def many_loras(library):
    """52 more rows (no files needed for listing): 56 in all, so a second page exists."""
    root = library["root"]
    LoraModel.objects.bulk_create([
        LoraModel(root=root, relative_path=f"bulk/zz_{i:02d}.safetensors", folder="bulk",
                  file_name=f"zz_{i:02d}.safetensors", name=f"zz_{i:02d}", base_model="SD 1.5",
                  nsfw_level=16 if i == 51 else 1, trigger_words=[f"word{i}"])
        for i in range(52)])


def test_load_more_appends_the_next_page_from_the_api(lora_server, many_loras, browser):
    page, seen = browser
    cards = page.locator("#lora-grid .lora-card")
    expect(cards).to_have_count(50)
    expect(page.locator("#page-info")).to_have_text("50 of 56")
    with page.expect_response(lambda r: "/api/loras/?" in r.url and "page=2" in r.url) as resp:
        page.click("#load-more")
    assert resp.value.status == 200
    expect(cards).to_have_count(56)
    expect(page.locator("#load-more")).to_have_count(0)
    expect(page.locator("#page-info")).to_have_text("56 of 56")
    # Cards built by the script behave like the server-rendered ones.
    last = _card(page, "zz_51")
    expect(last).to_have_class(re.compile(r"\bnsfw\b"))
    expect(last.locator(".badge")).to_have_text("SD 1.5")
    expect(last.locator(".lora-placeholder")).to_have_text("SD 1.5")
    expect(last.locator(".lora-name")).to_have_attribute("href", re.compile(r"^/loras/\d+/$"))
    last.locator(".fav-toggle").click()
    expect(last.locator(".fav-toggle")).to_have_attribute("aria-pressed", "true")
    last.locator(".lora-check").check()
    expect(page.locator("#bulk-count")).to_have_text("1 selected")
    assert seen["page_errors"] == []
