"""Browser tests of the server-rendered pages against the real ASGI server (HTTP + WebSocket)
with its embedded Celery worker: log in, generate with live progress, open the image, errors.

Runs Debian's chromium through Playwright (never ``playwright install``); `make test` installs
``/usr/bin/chromium`` when it is missing (see the Makefile).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import requests
from playwright import sync_api as playwright_api

from tests.support.browser import launch, log_in

JOB_TIMEOUT_MS = 30_000
expect = playwright_api.expect
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def browser_page(asgi_live_server, user, fake_profile):
    """A chromium page plus what it saw: page errors, console errors, WebSocket URLs/frames.

    Depends on the database fixtures so that all rows exist before Playwright's event loop
    runs in this thread (Django refuses ORM calls while a loop is running)."""
    seen = {"page_errors": [], "console_errors": [], "websockets": [], "ws_frames": []}
    with playwright_api.sync_playwright() as p:
        browser = launch(p)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(JOB_TIMEOUT_MS)
        page.on("pageerror", lambda exc: seen["page_errors"].append(str(exc)))
        page.on("console", lambda msg: msg.type == "error" and seen["console_errors"].append(
            msg.text))

        def on_websocket(ws):
            seen["websockets"].append(ws.url)
            ws.on("framereceived", lambda payload: seen["ws_frames"].append(payload))

        page.on("websocket", on_websocket)
        try:
            yield page, seen
        finally:
            context.close()
            browser.close()


@pytest.fixture
def slow_profile(db):
    """A profile on the ``fake_slow`` provider of the test settings (0.05 s per step)."""
    from tests.factories import ModelProfileFactory

    return ModelProfileFactory(slug="slow", name="Slow", provider="fake_slow",
                               default_steps=150, is_default=False)


def _log_in(page, base_url, username="alice"):
    log_in(page, base_url, username)


def test_generate_progress_result_detail_and_validation_error(asgi_live_server, browser_page):
    page, seen = browser_page
    base = asgi_live_server
    prompt = "a red fox in fresh snow, watercolor"

    _log_in(page, base)

    # The profile's defaults are filled in from its data- attributes.
    expect(page.locator("#id_model")).to_have_value("fake")
    expect(page.locator("#id_width")).to_have_value("64")
    expect(page.locator("#id_height")).to_have_value("64")
    expect(page.locator("#id_steps")).to_have_value("4")
    expect(page.locator("#profile-info")).to_contain_text("fake")

    page.fill("#id_prompt", prompt)
    page.fill("#id_seed", "4242")
    page.click("#generate-btn")

    # The progress bar completes and the image appears in #result.
    expect(page.locator("#progress-wrap")).to_be_visible()
    page.wait_for_function("document.querySelector('#progress').value === 1",
                           timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#progress-text")).to_contain_text("step 4 / 4")
    expect(page.locator("#progress-text")).to_contain_text("done")
    expect(page.locator("#cancel-btn")).to_be_hidden()
    expect(page.locator("#error")).to_be_hidden()
    result_img = page.locator("#result img")
    expect(result_img).to_have_count(1)
    page.wait_for_function(
        "() => { const i = document.querySelector('#result img');"
        " return i && i.complete && i.naturalWidth > 0; }", timeout=JOB_TIMEOUT_MS)
    assert result_img.evaluate("i => [i.naturalWidth, i.naturalHeight]") == [64, 64]
    expect(page.locator("#result")).to_contain_text("seed 4242")
    # The new image is added to the recent strip too.
    expect(page.locator("#recent-strip img")).to_have_count(1)

    # Progress came over the WebSocket of this job, not only by polling.
    assert any(re.search(r"^ws://127\.0\.0\.1:\d+/ws/jobs/[0-9a-f-]{36}/$", url)
               for url in seen["websockets"]), seen["websockets"]
    assert any('"succeeded"' in str(frame) for frame in seen["ws_frames"])

    # Click through to the detail page: seed, prompt, parameters, download link, infotext.
    page.click("#result a")
    page.wait_for_url(re.compile(rf"^{re.escape(base)}/images/\d+/$"))
    expect(page.locator("#param-seed")).to_have_text("4242")
    expect(page.locator("#param-prompt")).to_have_text(prompt)
    expect(page.locator("#params")).to_contain_text("64×64")
    expect(page.locator("#infotext")).to_contain_text("Seed: 4242")
    expect(page.locator("#download-link")).to_have_attribute("href", re.compile(r"\.png$"))
    page.wait_for_function(
        "() => { const i = document.getElementById('detail-img');"
        " return i.complete && i.naturalWidth > 0; }")

    # "Generate again" prefills the form from the query string.
    page.click("#regenerate-link")
    page.wait_for_url(re.compile(rf"^{re.escape(base)}/\?"))
    expect(page.locator("#id_prompt")).to_have_value(prompt)
    expect(page.locator("#id_seed")).to_have_value("4242")
    expect(page.locator("#id_steps")).to_have_value("4")
    expect(page.locator("#id_model")).to_have_value("fake")

    # The gallery lists it as a lazy-loaded thumbnail linking to the detail page.
    page.goto(f"{base}/gallery/")
    tile = page.locator(".gallery-grid a.tile")
    expect(tile).to_have_count(1)
    expect(tile).to_have_attribute("href", re.compile(r"^/images/\d+/$"))
    expect(tile.locator("img")).to_have_attribute("loading", "lazy")

    # A width that is not a multiple of 8: the API's message is shown and the field marked.
    page.goto(f"{base}/")
    page.fill("#id_prompt", prompt)
    page.fill("#id_width", "1001")
    page.click("#generate-btn")
    error = page.locator("#error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("multiple of 8")
    expect(page.locator("#id_width")).to_have_class(re.compile(r"\binvalid\b"))
    expect(page.locator("#id_width").locator("xpath=..").locator(".field-error")).to_contain_text(
        "multiple of 8")
    expect(page.locator("#generate-btn")).to_be_enabled()

    assert seen["page_errors"] == []
    # The only failed load is the expected 400 of /api/generate/ (and maybe a favicon 404).
    unexpected = [m for m in seen["console_errors"]
                  if "400 (Bad Request)" not in m and "404 (Not Found)" not in m]
    assert unexpected == []


def test_failed_job_shows_its_error_message(asgi_live_server, browser_page):
    page, seen = browser_page
    base = asgi_live_server
    _log_in(page, base)

    # The fake provider fails on prompts containing "<fail>".
    page.fill("#id_prompt", "this one should <fail>")
    page.click("#generate-btn")
    error = page.locator("#error")
    expect(error).to_be_visible(timeout=JOB_TIMEOUT_MS)
    expect(error).to_contain_text("The fake provider was asked to fail.")
    expect(page.locator("#progress-text")).to_have_text("Failed")
    expect(page.locator("#result img")).to_have_count(0)
    expect(page.locator("#generate-btn")).to_be_enabled()
    assert seen["page_errors"] == []


def test_progress_eta_and_cancel(asgi_live_server, slow_profile, browser_page):
    page, seen = browser_page
    base = asgi_live_server
    _log_in(page, base)

    page.select_option("#id_model", "slow")
    expect(page.locator("#id_steps")).to_have_value("150")
    expect(page.locator("#profile-info")).to_contain_text("fake_slow")
    page.fill("#id_prompt", "a slow one")
    page.click("#generate-btn")

    # Running: "step X / 150" with an ETA, the bar part-way, Cancel offered.
    expect(page.locator("#progress-text")).to_contain_text(re.compile(r"step \d+ / 150 · ETA \d+"))
    assert 0 < page.locator("#progress").evaluate("p => p.value") < 1
    expect(page.locator("#generate-btn")).to_be_disabled()
    page.click("#cancel-btn")
    expect(page.locator("#progress-text")).to_have_text("Canceled")
    expect(page.locator("#cancel-btn")).to_be_hidden()
    expect(page.locator("#error")).to_be_hidden()
    expect(page.locator("#result img")).to_have_count(0)
    expect(page.locator("#generate-btn")).to_be_enabled()
    assert seen["page_errors"] == []


def test_polling_fallback_when_the_websocket_closes(asgi_live_server, browser_page):
    page, seen = browser_page
    base = asgi_live_server
    # Every WebSocket goes to a closed port, so it closes at once without a message.
    page.add_init_script("""(() => {
      const Real = window.WebSocket;
      window.WebSocket = function () { return new Real("ws://127.0.0.1:9/"); };
    })();""")
    polled = []
    page.on("request", lambda req: re.search(r"/api/jobs/[0-9a-f-]{36}/$", req.url)
            and polled.append(req.url))
    _log_in(page, base)

    page.fill("#id_prompt", "polled fox")
    page.click("#generate-btn")
    page.wait_for_function("document.querySelector('#progress').value === 1",
                           timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#progress-text")).to_contain_text("done")
    page.wait_for_function(
        "() => { const i = document.querySelector('#result img');"
        " return i && i.complete && i.naturalWidth > 0; }", timeout=JOB_TIMEOUT_MS)
    assert polled, "the page never polled GET /api/jobs/<id>/"
    assert seen["page_errors"] == []


@pytest.fixture
def style_and_loras(db, user, tmp_path):
    """A shared style and two LoRAs (with trigger words) in the library."""
    from images.models import Style
    from loras.models import LibraryRoot, LoraModel

    style = Style.objects.create(name="Watercolor", prompt_template="{prompt}, watercolor wash",
                                 negative_prompt="photo", is_shared=True)
    root = LibraryRoot.objects.create(name="main", path=str(tmp_path / "loras"))
    for name, triggers, weight in (("inkwash", ["inkwash style", "sumi-e"], 0.7),
                                   ("pixelart", ["pixel art"], None)):
        LoraModel.objects.create(root=root, relative_path=f"{name}.safetensors",
                                 file_name=f"{name}.safetensors", name=name,
                                 trigger_words=triggers, preferred_weight=weight,
                                 base_model="SD 1.5")
    return style


def test_style_lora_picker_capabilities_and_styled_generation(asgi_live_server, style_and_loras,
                                                              browser_page, tmp_path):
    page, seen = browser_page
    base = asgi_live_server
    _log_in(page, base)

    # Capabilities of the fake provider, rendered with the profile.
    caps = page.locator("#profile-caps")
    expect(caps.locator("[data-cap=txt2img]")).to_have_class(re.compile(r"\bcap-on\b"))
    expect(caps.locator("[data-cap=loras]")).to_have_class(re.compile(r"\bcap-on\b"))
    expect(caps).to_contain_text("batch ≤ 8")

    # Search the library, pick a LoRA: its preferred weight and trigger words come along.
    page.fill("#lora-search", "ink")
    result = page.locator("#lora-results .lora-result")
    expect(result).to_have_count(1)
    expect(result).to_contain_text("inkwash")
    result.click()
    row = page.locator("#lora-list .lora-row")
    expect(row).to_have_count(1)
    expect(row.locator(".lora-name")).to_have_value("inkwash")
    expect(row.locator(".lora-weight-value")).to_have_text("0.70")
    page.fill("#id_prompt", "a heron")
    row.locator(".trigger-word", has_text="sumi-e").click()
    expect(page.locator("#id_prompt")).to_have_value("a heron, sumi-e")
    page.fill("#lora-search", "zzz-nothing")
    expect(page.locator("#lora-search-msg")).to_contain_text("No LoRA matches")

    # The style list comes from /api/styles/; the template is shown.
    page.select_option("#id_style", label="Watercolor")
    expect(page.locator("#style-info")).to_contain_text("{prompt}, watercolor wash")
    shot_dir = Path(os.environ.get("PAGES_SCREENSHOT_DIR") or tmp_path)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(shot_dir / "generate.png"), full_page=True)

    # The LoRA row has no file behind it: drop it and generate with the style only.
    row.locator(".lora-remove").click()
    sent = []
    page.on("request", lambda r: r.url.endswith("/api/generate/") and sent.append(r.post_data_json))
    page.click("#generate-btn")
    page.wait_for_function("document.querySelector('#progress').value === 1",
                           timeout=JOB_TIMEOUT_MS)
    assert sent and sent[0]["style"] == str(style_and_loras.pk)
    page.click("#result a")
    expect(page.locator("#param-prompt")).to_have_text("a heron, sumi-e, watercolor wash")
    assert seen["page_errors"] == []


def test_queue_lists_my_running_job_and_cancels_it(asgi_live_server, slow_profile, browser_page):
    page, seen = browser_page
    base = asgi_live_server
    _log_in(page, base)
    expect(page.locator("#queue-empty")).to_be_visible()
    page.select_option("#id_model", "slow")
    page.fill("#id_prompt", "a slow queued one")
    page.click("#generate-btn")
    item = page.locator("#queue-list .queue-item")
    expect(item).to_have_count(1)
    expect(item).to_contain_text("generate")
    expect(item).to_contain_text(re.compile(r"running|queued"))
    item.locator(".queue-cancel").click()
    expect(page.locator("#progress-text")).to_have_text("Canceled")
    expect(page.locator("#queue-list .queue-item")).to_have_count(0, timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#queue-empty")).to_be_visible()
    assert seen["page_errors"] == []


@pytest.fixture
def user_token(user):
    from rest_framework.authtoken.models import Token

    return Token.objects.get_or_create(user=user)[0].key


def test_queue_follows_the_websocket_without_polling(asgi_live_server, slow_profile, user_token,
                                                     browser_page):
    """Jobs started elsewhere (another tab, a script) appear, progress and leave the panel
    from /ws/jobs/ alone: with the socket up the panel polls only every 30 s."""
    page, seen = browser_page
    base = asgi_live_server
    token = user_token
    _log_in(page, base)
    page.wait_for_function("window.Atelier.queueSocket && window.Atelier.queueSocket() && "
                           "window.Atelier.queueSocket().readyState === 1")
    assert any(url.endswith("/ws/jobs/") for url in seen["websockets"])
    expect(page.locator("#queue-empty")).to_be_visible()
    gets = []
    page.on("request", lambda r: "/api/jobs/?" in r.url and gets.append(r.url))
    http = requests.Session()
    http.headers["Authorization"] = f"Token {token}"
    resp = http.post(f"{base}/api/generate/", json={"prompt": "from a script", "model": "slow"})
    assert resp.status_code == 202, resp.text
    item = page.locator("#queue-list .queue-item")
    expect(item).to_have_count(1, timeout=5000)
    expect(item).to_contain_text(re.compile(r"step \d+ / 150"), timeout=5000)
    assert http.post(f"{base}/api/jobs/{resp.json()['job']}/cancel/").status_code in (200, 202)
    expect(page.locator("#queue-list .queue-item")).to_have_count(0, timeout=5000)
    expect(page.locator("#queue-empty")).to_be_visible()
    assert gets == []  # all of it came over the socket
    assert seen["page_errors"] == []


def test_prefill_with_loras_list_and_style(asgi_live_server, style_and_loras, browser_page):
    page, _ = browser_page
    base = asgi_live_server
    _log_in(page, base)
    page.goto(f"{base}/?prompt=owl&seed=99&steps=3&model=fake&loras=inkwash:0.5,pixelart:1.2"
              f"&style=Watercolor")
    expect(page.locator("#id_prompt")).to_have_value("owl")
    expect(page.locator("#id_seed")).to_have_value("99")
    expect(page.locator("#id_steps")).to_have_value("3")
    names = page.locator("#lora-list .lora-name")
    expect(names).to_have_count(2)
    expect(names.nth(1)).to_have_value("pixelart")
    expect(page.locator("#lora-list .lora-weight-value").nth(0)).to_have_text("0.50")
    expect(page.locator("#id_style option:checked")).to_have_text("Watercolor")


def test_step_preview_from_the_snapshot_is_shown(asgi_live_server, slow_profile, browser_page):
    """A running job's snapshot may carry ``result.preview`` (a data: URL, helper C's step
    previews); the page shows it above the output and hides it when the job ends. The snapshots
    here come by polling (WebSocket closed) with a preview added to the real answers."""
    import base64
    import io
    import json

    from PIL import Image as PILImage

    page, seen = browser_page
    base = asgi_live_server
    buf = io.BytesIO()
    PILImage.new("RGB", (32, 32), (200, 40, 40)).save(buf, "WEBP")
    data_url = "data:image/webp;base64," + base64.b64encode(buf.getvalue()).decode()
    page.add_init_script("""(() => {
      const Real = window.WebSocket;
      window.WebSocket = function () { return new Real("ws://127.0.0.1:9/"); };
    })();""")

    def add_preview(route):
        resp = route.fetch()
        body = resp.json()
        if body.get("status") == "running":
            body["result"] = {**(body.get("result") or {}), "preview": data_url}
        route.fulfill(response=resp, body=json.dumps(body))

    page.route(re.compile(r".*/api/jobs/[0-9a-f-]{36}/$"), add_preview)
    _log_in(page, base)
    page.select_option("#id_model", "slow")
    page.fill("#id_prompt", "a previewed one")
    page.click("#generate-btn")
    preview = page.locator("#step-preview")
    expect(preview).to_be_visible(timeout=JOB_TIMEOUT_MS)
    page.wait_for_function("() => document.getElementById('step-preview').naturalWidth === 32")
    page.click("#cancel-btn")
    expect(page.locator("#progress-text")).to_have_text("Canceled")
    expect(preview).to_be_hidden()
    assert seen["page_errors"] == []
