"""Browser tests of the gallery for daily use (issue 15): search, filters and sort kept in the
address bar; bulk selection (tick box on hover, shift-click range, select all) with move,
publish, favourite, ZIP download and delete; the lightbox (← / → across pages, F, Esc,
parameters, send to generate, upscale, edit); and infinite scroll over 5,000 images with the
time to the first thumbnails and to the 500th printed and the API requests counted.

Real daphne server with its embedded worker, real API, Debian's chromium through Playwright.
Screenshots go to ``PAGES_SCREENSHOT_DIR`` when set (else the test's tmp dir).
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import zipfile
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from django.utils import timezone
from PIL import Image as PILImage
from playwright import sync_api as playwright_api

from images.models import Image, Project
from tests.support.browser import launch, log_in

TIMEOUT_MS = 30_000
expect = playwright_api.expect
pytestmark = pytest.mark.django_db(transaction=True)

INFOTEXT = ("{prompt}\nNegative prompt: blurry\nSteps: 4, Sampler: DPM++ 2M, "
            "Schedule type: Karras, CFG scale: 5, Seed: {seed}, Size: 96x96, Model: Fake, "
            "Clip skip: 2")


def shot(page, tmp_path, name, full_page=False):
    out = Path(os.environ.get("PAGES_SCREENSHOT_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    assert path.stat().st_size > 3_000
    return path


def _png(color, size=(96, 96), fmt="PNG") -> bytes:
    buf = io.BytesIO()
    img = PILImage.new("RGB", size, color)
    for x in range(0, size[0], 12):
        for y in range(0, size[1], 12):
            if (x + y) // 12 % 2:
                img.putpixel((x, y), (255, 255, 255))
    img.save(buf, fmt)
    return buf.getvalue()


def make_images(user, media_root, specs, *, files=None):
    """Image rows of ``user`` from ``specs`` (dicts of field overrides), created with one
    ``bulk_create``. Each row gets its own PNG and thumbnail unless ``files`` (a count) is
    given: then the rows share that many PNG/thumbnail pairs (enough for a scroll test)."""
    root = Path(media_root)
    (root / "images" / "g").mkdir(parents=True, exist_ok=True)
    (root / "thumbnails" / "g").mkdir(parents=True, exist_ok=True)
    distinct = files or len(specs)
    for i in range(distinct):
        color = ((i * 53) % 255, (i * 97) % 255, 150)
        (root / f"images/g/u{user.pk}-{i}.png").write_bytes(_png(color))
        (root / f"thumbnails/g/u{user.pk}-{i}.webp").write_bytes(_png(color, (48, 48), "WEBP"))
    rows = []
    for i, spec in enumerate(specs):
        k = i % distinct
        seed = spec.get("seed", 1000 + i)
        prompt = spec.get("prompt", f"image number {i}")
        fields = dict(user=user, file=f"images/g/u{user.pk}-{k}.png",
                      thumbnail=f"thumbnails/g/u{user.pk}-{k}.webp", width=96, height=96,
                      seed=seed, steps=4, guidance_scale=5.0, sampler="DPM++ 2M",
                      scheduler="Karras", prompt=prompt, negative_prompt="blurry",
                      provider="fake", model_name="Fake",
                      parameters=INFOTEXT.format(prompt=prompt, seed=seed))
        fields.update(spec)
        rows.append(Image(**fields))
    Image.objects.bulk_create(rows, batch_size=500)
    return list(Image.objects.filter(user=user).order_by("created_at", "id"))


@pytest.fixture
def browser_page(asgi_live_server, user, fake_profile, monkeypatch):
    """A chromium page plus the page errors it saw. The tests read rows between Playwright
    calls on this thread, while Playwright's event loop is set on it: Django refuses ORM
    calls there unless told that this thread runs nothing concurrently."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    seen = {"page_errors": [], "console": []}
    with playwright_api.sync_playwright() as p:
        browser = launch(p)
        context = browser.new_context(viewport={"width": 1280, "height": 900},
                                      accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda exc: seen["page_errors"].append(str(exc)))
        page.on("console", lambda m: m.type == "error" and seen["console"].append(m.text))
        try:
            yield page, seen
        finally:
            context.close()
            browser.close()


def tiles(page):
    return page.locator("#gallery a.tile")


def tile_ids(page):
    return [int(x) for x in page.eval_on_selector_all("#gallery a.tile",
                                                      "els => els.map(e => e.dataset.id)")]


# ------------------------------------------------------------------ search, filters, sort


@pytest.fixture
def varied(user, other_user, settings):
    old = timezone.make_aware(dt.datetime(2024, 1, 5, 12, 0))
    specs = [
        {"prompt": "a red fox in the snow", "is_favorite": True},
        {"prompt": "a fox cub asleep", "model_name": "Dreamy",
         "loras": [{"lora_id": 7, "name": "inkwash", "weight": 0.7}]},
        {"prompt": "a lighthouse at dusk"},
        {"prompt": "harbour boats", "model_name": "Dreamy"},
        {"prompt": "an old fox photograph"},
    ]
    rows = make_images(user, settings.MEDIA_ROOT, specs)
    Image.objects.filter(pk=rows[4].pk).update(created_at=old)
    coast = Project.objects.create(owner=user, name="Coast")
    Image.objects.filter(pk__in=[rows[2].pk, rows[3].pk]).update(project=coast)
    make_images(other_user, settings.MEDIA_ROOT, [{"prompt": "mallory's fox", "is_public": True}])
    return {r.prompt: r.pk for r in rows}, coast


def test_search_filters_and_sort(asgi_live_server, varied, browser_page, tmp_path):
    page, seen = browser_page
    base = asgi_live_server
    ids, coast = varied
    log_in(page, base, next_url="/gallery/")
    expect(tiles(page)).to_have_count(5)
    expect(page.locator("#gallery-count")).to_have_text("5 images")

    # Search by prompt (debounced), in the address bar; mallory's fox is not mine.
    page.fill("#f-q", "fox")
    expect(tiles(page)).to_have_count(3)
    assert "q=fox" in page.url
    page.check("#f-favorite")
    expect(tiles(page)).to_have_count(1)
    assert tile_ids(page) == [ids["a red fox in the snow"]]
    assert "favorite=true" in page.url
    page.uncheck("#f-favorite")
    expect(tiles(page)).to_have_count(3)

    # Model and LoRA filters combine with the search.
    page.select_option("#f-model", "Dreamy")
    expect(tiles(page)).to_have_count(1)
    assert tile_ids(page) == [ids["a fox cub asleep"]]
    page.select_option("#f-model", "")
    page.fill("#f-lora", "inkwash")
    expect(tiles(page)).to_have_count(1)
    page.fill("#f-lora", "")
    page.fill("#f-q", "")
    expect(tiles(page)).to_have_count(5)

    # Project filter.
    expect(page.locator(f"#f-project option[value='{coast.pk}']")).to_have_count(1)
    page.select_option("#f-project", str(coast.pk))
    expect(tiles(page)).to_have_count(2)
    assert set(tile_ids(page)) == {ids["a lighthouse at dusk"], ids["harbour boats"]}
    page.select_option("#f-project", "")

    # Date range: the old photograph alone is from January 2024.
    page.fill("#f-to", "2024-12-31")
    expect(tiles(page)).to_have_count(1)
    assert tile_ids(page) == [ids["an old fox photograph"]]
    assert "created_before=2024-12-31" in page.url
    page.fill("#f-to", "")
    page.fill("#f-from", "2025-01-01")
    expect(tiles(page)).to_have_count(4)
    page.fill("#f-from", "")
    expect(tiles(page)).to_have_count(5)

    # Sort: newest first by default (the old photo last), oldest first, favourites first.
    assert tile_ids(page)[-1] == ids["an old fox photograph"]
    assert tile_ids(page)[0] == ids["harbour boats"]
    page.select_option("#f-sort", "created_at,id")
    expect(tiles(page).first).to_have_attribute("data-id", str(ids["an old fox photograph"]))
    assert "ordering=created_at%2Cid" in page.url
    page.select_option("#f-sort", "-is_favorite,-created_at,-id")
    expect(tiles(page).first).to_have_attribute("data-id", str(ids["a red fox in the snow"]))
    shot(page, tmp_path, "gallery-daily-filters", full_page=True)

    # The address bar restores the whole state on a reload.
    page.fill("#f-q", "fox")
    expect(tiles(page)).to_have_count(3)
    page.reload()
    expect(page.locator("#f-q")).to_have_value("fox")
    expect(page.locator("#f-sort")).to_have_value("-is_favorite,-created_at,-id")
    expect(tiles(page)).to_have_count(3)
    expect(tiles(page).first).to_have_attribute("data-id", str(ids["a red fox in the snow"]))

    # Public scope: search reaches everyone's public images.
    page.click("[data-scope=public]")
    expect(tiles(page)).to_have_count(1)
    expect(tiles(page).first.locator(".tile-meta")).to_contain_text("by mallory")
    expect(page.locator("#select-mode")).to_be_hidden()
    assert seen["page_errors"] == []


# ------------------------------------------------------------------ bulk selection


@pytest.fixture
def six(user, other_user, settings):
    rows = make_images(user, settings.MEDIA_ROOT,
                       [{"prompt": f"sea study {i}"} for i in range(6)])
    Project.objects.create(owner=user, name="Coast")
    Project.objects.create(owner=other_user, name="Not mine", is_public=True)
    return [r.pk for r in rows]


def test_bulk_select_move_publish_zip_delete(asgi_live_server, six, browser_page, tmp_path,
                                             settings):
    page, seen = browser_page
    base = asgi_live_server
    log_in(page, base, next_url="/gallery/")
    expect(tiles(page)).to_have_count(6)
    order = tile_ids(page)  # newest first
    bar = page.locator("#bulk-bar")
    expect(bar).to_be_hidden()

    # The tick box shows on hover only.
    first = tiles(page).nth(0)
    check = first.locator(".tile-check")
    page.mouse.move(0, 0)
    page.wait_for_function("el => getComputedStyle(el).opacity === '0'", arg=check.element_handle())
    first.hover()
    page.wait_for_function("el => getComputedStyle(el).opacity === '1'", arg=check.element_handle())
    check.click()
    expect(bar).to_be_visible()
    expect(page.locator("#bulk-count")).to_have_text("1 selected")
    expect(first).to_have_class(re.compile(r"\bselected\b"))
    expect(page.locator("#lightbox")).not_to_be_visible()  # a tick never opens the lightbox

    # Shift-click the fourth: the range 1..4 is selected.
    tiles(page).nth(3).locator(".tile-check").click(modifiers=["Shift"])
    expect(page.locator("#bulk-count")).to_have_text("4 selected")
    expect(page.locator("#gallery a.tile.selected")).to_have_count(4)
    # While selecting, a click on a tile toggles it.
    tiles(page).nth(1).click()
    expect(page.locator("#bulk-count")).to_have_text("3 selected")
    tiles(page).nth(1).click()
    expect(page.locator("#bulk-count")).to_have_text("4 selected")
    shot(page, tmp_path, "gallery-daily-bulk")

    # Move to my project (the other user's public project is not offered).
    expect(page.locator("#bulk-project option", has_text="Not mine")).to_have_count(0)
    page.select_option("#bulk-project", label="Coast")
    page.click("#bulk-move")
    expect(page.locator("#bulk-status")).to_have_text("Moved 4 images to Coast.")
    coast = Project.objects.get(name="Coast")
    assert set(coast.images.values_list("pk", flat=True)) == set(order[:4])

    # Make public: badges appear, the rows change.
    page.click("#bulk-publish")
    expect(page.locator("#bulk-status")).to_have_text("Made public 4 images.")
    expect(page.locator("#gallery a.tile .tile-badge", has_text="public")).to_have_count(4)
    assert set(Image.objects.filter(is_public=True).values_list("pk", flat=True)) == set(order[:4])
    page.click("#bulk-favorite")
    expect(page.locator("#gallery a.tile .tile-fav")).to_have_count(4)

    # Select all loaded, then clear.
    page.click("#bulk-all")
    expect(page.locator("#bulk-count")).to_have_text("6 selected")
    page.click("#bulk-none")
    expect(bar).to_be_hidden()
    expect(page.locator("#gallery a.tile.selected")).to_have_count(0)

    # Keyboard: Space ticks the focused tile.
    tiles(page).nth(2).focus()
    page.keyboard.press("Space")
    expect(page.locator("#bulk-count")).to_have_text("1 selected")
    expect(tiles(page).nth(2)).to_have_class(re.compile(r"\bselected\b"))
    page.click("#bulk-none")
    expect(bar).to_be_hidden()

    # ZIP of two: a plain form post, saved by the browser.
    page.click("#select-mode")
    expect(bar).to_be_visible()
    tiles(page).nth(4).click()
    tiles(page).nth(5).click()
    expect(page.locator("#bulk-count")).to_have_text("2 selected")
    with page.expect_download() as info:
        page.click("#bulk-zip")
    saved = tmp_path / "dl.zip"
    info.value.save_as(saved)
    with zipfile.ZipFile(saved) as zf:
        names = zf.namelist()
        assert sorted(int(n.split("-")[0]) for n in names) == sorted(order[4:6])
        img = Image.objects.get(pk=order[4])
        name = next(n for n in names if n.startswith(f"{order[4]}-"))
        assert zf.read(name) == Path(settings.MEDIA_ROOT, img.file.name).read_bytes()
        assert name == f"{order[4]}-sea-study-{img.prompt.rsplit(' ', 1)[-1]}.png"

    # Delete the two (after a confirmation): tiles, rows and files go.
    page.on("dialog", lambda d: d.accept())
    page.click("#bulk-delete")
    expect(tiles(page)).to_have_count(4)
    expect(page.locator("#gallery-count")).to_have_text("4 images")
    assert set(Image.objects.values_list("pk", flat=True)) == set(order[:4])
    page.reload()
    expect(tiles(page)).to_have_count(4)

    # Phone size: the bar wraps under the filters, still usable.
    page.set_viewport_size({"width": 390, "height": 844})
    page.click("#select-mode")
    tiles(page).nth(0).click()
    expect(page.locator("#bulk-count")).to_have_text("1 selected")
    shot(page, tmp_path, "gallery-daily-bulk-phone")
    assert seen["page_errors"] == []


# ------------------------------------------------------------------ lightbox


@pytest.fixture
def hundred_and_five(user, settings):
    specs = [{"prompt": f"lighthouse {i}"} for i in range(104)]
    specs.append({"prompt": "<lora:inkwash:0.7> a quiet harbour at dawn", "seed": 4242,
                  "loras": [{"lora_id": 7, "name": "inkwash", "weight": 0.7}]})
    return make_images(user, settings.MEDIA_ROOT, specs, files=8)


def test_lightbox_keys_parameters_and_actions(asgi_live_server, hundred_and_five, browser_page,
                                              tmp_path):
    page, seen = browser_page
    base = asgi_live_server
    rows = hundred_and_five
    newest = rows[-1]
    requests = []
    page.on("request", lambda r: "/api/images/?" in r.url and requests.append(r.url))
    log_in(page, base, next_url="/gallery/")
    expect(tiles(page)).to_have_count(100)
    lb = page.locator("#lightbox")

    # Open the newest: the PNG (not the thumbnail) and its parameters beside it.
    tiles(page).first.click()
    expect(lb).to_be_visible()
    expect(page.locator("#lb-img")).to_have_attribute("src", re.compile(r"/media/images/g/"))
    params = page.locator("#lb-params")
    expect(params).to_contain_text("a quiet harbour at dawn")
    expect(params).to_contain_text("4242")
    expect(params).to_contain_text("Karras")
    expect(params).to_contain_text("DPM++ 2M")
    expect(params).to_contain_text("inkwash 0.7")
    expect(page.locator("#lb-pos")).to_contain_text("1 of 105")
    loaded = ("() => { const i = document.getElementById('lb-img');"
              " return i.complete && i.naturalWidth === 96; }")
    page.wait_for_function(loaded)  # the PNG is served to its owner
    box = page.locator("#lb-img").bounding_box()
    assert box["height"] > 600  # scaled up to fill the stage
    shot(page, tmp_path, "gallery-daily-lightbox")

    # Send to generate: the generate page's query parameters.
    href = page.locator("#lb-generate").get_attribute("href")
    q = parse_qs(urlparse(href).query)
    assert urlparse(href).path == "/"
    assert q["prompt"] == [newest.prompt] and q["negative_prompt"] == ["blurry"]
    assert (q["width"], q["height"], q["steps"], q["seed"]) == (["96"], ["96"], ["4"], ["4242"])
    assert q["guidance_scale"] == ["5"] and q["model"] == ["fake"]
    assert q["sampler"] == ["DPM++ 2M"] and q["scheduler"] == ["Karras"]
    assert q["clip_skip"] == ["2"] and q["lora"] == ["inkwash:0.7"]
    expect(page.locator("#lb-edit")).to_have_attribute("href", f"/images/{newest.pk}/#edit-form")

    # F: favourite on and off, saved and shown on the tile.
    page.keyboard.press("f")
    expect(page.locator("#lb-fav")).to_have_attribute("aria-pressed", "true")
    expect(tiles(page).first.locator(".tile-fav")).to_have_count(1)
    assert Image.objects.get(pk=newest.pk).is_favorite
    page.keyboard.press("F")
    expect(page.locator("#lb-fav")).to_have_attribute("aria-pressed", "false")
    page.wait_for_function("() => !document.querySelector('#gallery a.tile .tile-fav')")
    assert not Image.objects.get(pk=newest.pk).is_favorite

    # ← at the first does nothing; → goes on; Esc closes.
    page.keyboard.press("ArrowLeft")
    expect(page.locator("#lb-pos")).to_contain_text("1 of 105")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#lb-title")).to_have_text(f"Image #{rows[-2].pk}")
    page.keyboard.press("Escape")
    expect(lb).to_be_hidden()

    # Across pages: from the 100th (last loaded), → loads page 2 and shows the 101st.
    tiles(page).nth(99).scroll_into_view_if_needed()
    tiles(page).nth(99).click()
    expect(page.locator("#lb-pos")).to_contain_text("100 of")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#lb-pos")).to_contain_text("101 of")
    expect(page.locator("#lb-title")).to_have_text(f"Image #{rows[4].pk}")
    expect(tiles(page)).to_have_count(105)
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#lb-pos")).to_contain_text("105 of")
    expect(page.locator("#lb-next")).to_be_disabled()
    page.keyboard.press("ArrowLeft")
    expect(page.locator("#lb-pos")).to_contain_text("104 of")
    assert sum("page=2" in u for u in requests) == 1, requests

    # Upscale ×2 from the lightbox: queued, followed, a link to the result.
    page.click("#lb-upscale")
    link = page.locator("#lb-status a.result-link")
    expect(link).to_have_count(1, timeout=TIMEOUT_MS)
    expect(link).to_contain_text("192×192")

    # Del: delete the image shown (after a confirmation); the next one takes its place.
    expect(page.locator("#lb-title")).to_have_text(f"Image #{rows[1].pk}")
    page.once("dialog", lambda d: d.accept())
    page.keyboard.press("Delete")
    expect(page.locator("#lb-title")).to_have_text(f"Image #{rows[0].pk}")
    expect(page.locator("#lb-pos")).to_contain_text("104 of")
    assert not Image.objects.filter(pk=rows[1].pk).exists()
    expect(tiles(page)).to_have_count(104)
    page.keyboard.press("Escape")
    expect(lb).to_be_hidden()

    # Phone size: the filters fold behind a button; image above, parameters below.
    page.set_viewport_size({"width": 390, "height": 844})
    page.evaluate("window.scrollTo(0, 0)")
    expect(page.locator("#f-model")).to_be_hidden()
    expect(page.locator("#f-q")).to_be_visible()
    page.click("#filters-toggle")
    expect(page.locator("#f-model")).to_be_visible()
    page.select_option("#f-sort", "created_at,id")
    expect(page.locator("#filters-toggle")).to_have_text("Filters (1)")
    expect(tiles(page).first).to_have_attribute("data-id", str(rows[0].pk))
    page.click("#filters-toggle")
    expect(page.locator("#f-model")).to_be_hidden()
    tiles(page).first.click()
    expect(lb).to_be_visible()
    page.wait_for_function(loaded)
    shot(page, tmp_path, "gallery-daily-lightbox-phone")
    page.keyboard.press("Escape")
    shot(page, tmp_path, "gallery-daily-phone")
    assert seen["page_errors"] == []


# ------------------------------------------------------------------ 5,000 images


@pytest.fixture
def five_thousand(user, settings):
    import time

    start = time.perf_counter()
    rows = make_images(user, settings.MEDIA_ROOT,
                       [{"prompt": f"scroll test {i}"} for i in range(5000)], files=40)
    print(f"\n[gallery 5k] created {len(rows)} Image rows in {time.perf_counter() - start:.2f} s")
    return rows


def test_infinite_scroll_over_5000_images(asgi_live_server, five_thousand, browser_page,
                                          tmp_path):
    page, seen = browser_page
    base = asgi_live_server
    api_pages = []
    media = []
    page.on("request", lambda r: "/api/images/?" in r.url and api_pages.append(r.url))
    page.on("request", lambda r: "/media/" in r.url and media.append(r.url))
    api_ms = []  # time to the last byte of each API page, as the browser saw it
    page.on("requestfinished", lambda r: "/api/images/?" in r.url and api_ms.append(
        r.timing["responseEnd"] - r.timing["requestStart"]))
    log_in(page, base, next_url="/")
    # Long tasks (main thread busy > 50 ms) while the gallery loads and scrolls.
    page.add_init_script("""window.__long = [];
        try { new PerformanceObserver(l => l.getEntries().forEach(
          e => window.__long.push(e.duration))).observe({type: 'longtask', buffered: true});
        } catch (e) {}""")
    page.goto(f"{base}/gallery/")
    page.wait_for_function("""() => { const im = document.querySelector('#gallery a.tile img');
        return im && im.complete && im.naturalWidth > 0; }""")
    first_ms = page.evaluate("performance.now()")
    expect(page.locator("#gallery-count")).to_have_text("5,000 images")

    # Scroll down as a person would (a screen at a time) until the 500th thumbnail is shown.
    t0 = page.evaluate("performance.now()")
    for _ in range(400):
        done = page.evaluate("""() => { const t = document.querySelectorAll('#gallery a.tile');
            if (t.length < 500) return false; const im = t[499].querySelector('img');
            const r = t[499].getBoundingClientRect();
            return im.complete && im.naturalWidth > 0 && r.top < innerHeight && r.bottom > 0; }""")
        if done:
            break
        page.mouse.wheel(0, 900)
        page.wait_for_timeout(30)
        if page.evaluate("document.querySelectorAll('#gallery a.tile').length >= 500"):
            page.evaluate("document.querySelectorAll('#gallery a.tile')[499]"
                          ".scrollIntoView({block: 'center'})")
    else:
        raise AssertionError("the 500th thumbnail never showed")
    t500 = page.evaluate("performance.now()")
    loaded = page.evaluate("document.querySelectorAll('#gallery a.tile').length")
    long_tasks = page.evaluate("window.__long")
    print(f"[gallery 5k] first thumbnails {first_ms:.0f} ms after navigation start; "
          f"500th thumbnail {t500 - t0:.0f} ms of scrolling later ({t500:.0f} ms in all); "
          f"{len(api_pages)} API page requests for {loaded} tiles "
          f"({', '.join(f'{ms:.0f}' for ms in api_ms)} ms each); "
          f"{len(set(media))} distinct thumbnail URLs, {len(media)} media requests; "
          f"long tasks: {len(long_tasks)}, longest {max(long_tasks, default=0):.0f} ms")

    ids = tile_ids(page)
    assert len(ids) == len(set(ids)) == loaded >= 500
    assert all("page_size=100" in u for u in api_pages)
    assert 5 <= len(api_pages) <= 8, api_pages  # no request storm: one per 100 tiles
    assert loaded <= 800  # pages load as the sentinel nears, not all 5,000 at once
    assert all("/media/thumbnails/" in u for u in media), media[:5]  # thumbnails only
    shot(page, tmp_path, "gallery-daily-5000")

    # Delete three loaded images: the rows after the loaded ones move up three places, and the
    # grid asks for the last page again so that none of them is skipped.
    page.on("dialog", lambda d: d.accept())
    page.click("#select-mode")
    for i in (10, 11, 12):
        tiles(page).nth(i).click()
    expect(page.locator("#bulk-count")).to_have_text("3 selected")
    page.click("#bulk-delete")
    expect(page.locator("#gallery-count")).to_have_text("4,997 images")
    page.wait_for_function(f"""() => document.querySelectorAll('#gallery a.tile').length >= {loaded}
        && document.getElementById('gallery-status').textContent !== 'Loading…'""")
    ids = tile_ids(page)
    order = Image.objects.order_by("-created_at", "-id").values_list("pk", flat=True)
    assert ids == list(order[: len(ids)])  # the newest rows in order, no gap, no repeat
    assert seen["page_errors"] == []
