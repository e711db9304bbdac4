"""Browser tests of the generate page's A1111 controls (issue 13, item 8 and the page side of
items 5 and 7) against the real ASGI server with its embedded worker: sampler and schedule
type, clip skip, VAE, hires fix, aspect presets, reuse last seed, Ctrl+Enter, settings kept
across reloads, the img2img/inpaint tab with a painted mask, PNG Info from a dropped A1111 PNG,
and the LoRA picker's compatibility order.

Screenshots (desktop and 390×844) go to ``$PAGES_SCREENSHOT_DIR`` (default: the test's tmp
folder)."""

from __future__ import annotations

import base64
import io
import os
import re
from pathlib import Path

import pytest
from playwright import sync_api as playwright_api

from tests.support.browser import launch, log_in

JOB_TIMEOUT_MS = 30_000
expect = playwright_api.expect
pytestmark = pytest.mark.django_db(transaction=True)

#: An A1111 infotext as ``create_infotext`` writes it (prompt, negative, then the settings
#: line); hires fix and clip skip included.
A1111_PROMPT = "a (lighthouse:1.2) on a cliff at dusk, oil painting <lora:sumi-ink:0.8>"
A1111_INFOTEXT = (
    f"{A1111_PROMPT}\n"
    "Negative prompt: blurry, low quality\n"
    "Steps: 7, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 1234567, "
    "Size: 64x96, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.45, "
    "Clip skip: 2, Hires upscale: 1.5, Hires steps: 3, Hires upscaler: Latent, "
    'Lora hashes: "sumi-ink: 0123456789ab", Version: v1.10.1'
)


def _png(size=(64, 96), color=(90, 140, 200), text: dict | None = None) -> bytes:
    """A PNG made with Pillow; ``text`` becomes tEXt chunks (A1111 writes ``parameters``)."""
    from PIL import Image as PILImage
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in (text or {}).items():
        info.add_text(key, value)
    buf = io.BytesIO()
    PILImage.new("RGB", size, color).save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


@pytest.fixture
def asgi_live_server(transactional_db, settings, tmp_path):
    """The real server (conftest's fixture) with a VAE folder holding one VAE file:
    ``MODELS_DIR/VAE/kl-f8-anime.safetensors`` (listed by ``GET /api/vaes/``)."""
    from tests.support.servers import start_server

    vae_dir = tmp_path / "models" / "VAE"
    vae_dir.mkdir(parents=True)
    (vae_dir / "kl-f8-anime.safetensors").write_bytes(b"")
    with start_server(media_root=settings.MEDIA_ROOT, embedded=True,
                      extra_env={"MODELS_DIR": str(tmp_path / "models")}) as url:
        yield url


@pytest.fixture
def page_and_errors(asgi_live_server, user, fake_profile, monkeypatch):
    """A logged-in chromium page on the generate page and the page errors it raised.

    The tests read rows between Playwright calls, on this thread, while Playwright's loop
    is idle (as tests/example_images/test_pages_browser.py does)."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    errors: list[str] = []
    with playwright_api.sync_playwright() as p:
        browser = launch(p)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(JOB_TIMEOUT_MS)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        log_in(page, asgi_live_server)
        try:
            yield page, errors
        finally:
            context.close()
            browser.close()


def _sent(page, path: str) -> list:
    """Requests to ``path`` the page makes from now on (Playwright Request objects)."""
    seen: list = []
    page.on("request", lambda r: r.method == "POST" and r.url.endswith(path) and seen.append(r))
    return seen


def _wait_done(page) -> None:
    page.wait_for_function("document.querySelector('#progress').value === 1",
                           timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#progress-text")).to_contain_text("done")


def _expect_form(page, **values: str) -> None:
    """Each form field ``id_<name>`` has the given value."""
    for name, value in values.items():
        expect(page.locator(f"#id_{name}")).to_have_value(value)


def _shots_dir(tmp_path) -> Path:
    out = Path(os.environ.get("PAGES_SCREENSHOT_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    return out


def test_a1111_controls_post_their_fields_and_ctrl_enter_submits(asgi_live_server,
                                                                   page_and_errors):
    from images.models import GenerationRequest

    page, errors = page_and_errors
    # The sampler and schedule type lists come from the API (A1111 labels).
    expect(page.locator("#id_sampler option[value='DPM++ 2M']")).to_have_count(1)
    expect(page.locator("#id_scheduler option[value=Karras]")).to_have_count(1)
    expect(page.locator("#id_sampler option").first).to_have_text("Model default")
    expect(page.locator("#hires-fields")).to_be_hidden()

    page.fill("#id_prompt", "a lighthouse, (oil painting:1.2)")
    # A1111 samplers diffusers cannot run are listed but disabled.
    expect(page.locator("#id_sampler option[value='DPM++ 2S a CFG++']")).to_be_disabled()
    page.select_option("#id_sampler", "DPM++ 2M")
    expect(page.locator("#id_scheduler option").first).to_have_text("Automatic (Karras)")
    expect(page.locator("#id_scheduler option[value='KL Optimal']")).to_be_disabled()
    page.select_option("#id_scheduler", "Karras")
    page.fill("#id_clip_skip", "2")
    page.check("#id_enable_hr")
    expect(page.locator("#hires-fields")).to_be_visible()
    page.select_option("#id_hr_upscaler", "Lanczos")
    page.fill("#id_hr_scale", "2")
    page.fill("#id_hr_second_pass_steps", "3")
    page.fill("#id_denoising_strength", "0.5")
    expect(page.locator("#hires-size")).to_have_text("→ 128×128")
    page.fill("#id_hr_scale", "4")
    page.fill("#id_width", "256")  # 1024 wide: over the profile's 512
    expect(page.locator("#hires-size")).to_have_text("→ 1024×256 · over the model's 512×512")
    page.fill("#id_width", "64")
    page.fill("#id_hr_scale", "2")
    expect(page.locator("#hires-size")).to_have_text("→ 128×128")

    sent = _sent(page, "/api/generate/")
    # Ctrl+Enter from the prompt submits the form.
    page.locator("#id_prompt").press("Control+Enter")
    _wait_done(page)
    assert len(sent) == 1
    body = sent[0].post_data_json
    assert {k: body[k] for k in ("sampler", "scheduler", "clip_skip", "enable_hr", "hr_scale",
                                 "hr_upscaler", "hr_second_pass_steps",
                                 "denoising_strength")} == {
        "sampler": "DPM++ 2M", "scheduler": "Karras", "clip_skip": 2, "enable_hr": True,
        "hr_scale": 2, "hr_upscaler": "Lanczos", "hr_second_pass_steps": 3,
        "denoising_strength": 0.5}
    assert "vae" not in body  # Automatic: the model's own VAE
    row = GenerationRequest.objects.get()
    assert (row.sampler, row.scheduler, row.clip_skip, row.enable_hr, row.hr_scale,
            row.hr_upscaler, row.hr_second_pass_steps, row.hr_denoising_strength) == (
        "DPM++ 2M", "Karras", 2, True, 2.0, "Lanczos", 3, 0.5)

    # Ctrl+Enter does nothing while a job is being sent or runs (the button is disabled);
    # once done it submits again, now without hires fix.
    page.uncheck("#id_enable_hr")
    page.keyboard.press("Control+Enter")
    page.wait_for_function("document.querySelectorAll('#result img').length === 0 ||"
                           " document.querySelector('#progress').value === 1")
    _wait_done(page)
    assert len(sent) == 2
    assert sent[1].post_data_json["enable_hr"] is False
    assert "hr_scale" not in sent[1].post_data_json
    assert errors == []


def test_aspect_presets_reuse_seed_and_settings_survive_reload(asgi_live_server, other_user,
                                                               page_and_errors):
    page, errors = page_and_errors
    # The fake profile's base size is 64×64 (max 512×512): presets keep that area.
    page.click("#aspect-presets [data-ratio='16:9']")
    expect(page.locator("#id_width")).to_have_value("88")
    expect(page.locator("#id_height")).to_have_value("48")
    expect(page.locator("#aspect-presets [data-ratio='16:9']")).to_have_attribute(
        "aria-pressed", "true")
    page.click("#aspect-presets [data-ratio='2:3']")
    expect(page.locator("#id_width")).to_have_value("56")
    expect(page.locator("#id_height")).to_have_value("80")
    page.click("#size-swap")
    expect(page.locator("#id_width")).to_have_value("80")
    expect(page.locator("#id_height")).to_have_value("56")
    expect(page.locator("#aspect-presets [data-ratio='3:2']")).to_have_attribute(
        "aria-pressed", "true")
    page.click("#aspect-presets [data-ratio='1:1']")
    expect(page.locator("#id_width")).to_have_value("64")

    # No image yet: nothing to reuse. After one, "Reuse" fills its seed.
    expect(page.locator("#seed-reuse")).to_be_disabled()
    page.fill("#id_prompt", "a heron at dawn")
    page.fill("#id_seed", "-1")
    page.click("#generate-btn")
    _wait_done(page)
    seed = page.locator("#result .caption").inner_text().split()[1]
    assert seed.isdigit()
    expect(page.locator("#id_seed")).to_have_value("-1")
    page.click("#seed-reuse")
    expect(page.locator("#id_seed")).to_have_value(seed)

    # Settings made now are there after a reload.
    page.fill("#id_negative_prompt", "fog")
    page.fill("#id_steps", "6")
    page.select_option("#id_sampler", "Euler a")  # runs with no Karras sigmas
    expect(page.locator("#id_scheduler option[value=Karras]")).to_be_disabled()
    page.select_option("#id_sampler", "Euler")
    expect(page.locator("#id_scheduler option[value=Karras]")).to_be_enabled()
    page.select_option("#id_scheduler", "Exponential")
    page.fill("#id_clip_skip", "3")
    page.select_option("#id_vae", "kl-f8-anime.safetensors")
    page.check("#id_enable_hr")
    page.fill("#id_hr_scale", "1.5")
    page.click("#aspect-presets [data-ratio='3:2']")
    page.reload()
    _expect_form(page, prompt="a heron at dawn", negative_prompt="fog", steps="6", seed=seed,
                 sampler="Euler", scheduler="Exponential", clip_skip="3",
                 vae="kl-f8-anime.safetensors", hr_scale="1.5", width="80", height="56")
    expect(page.locator("#id_enable_hr")).to_be_checked()
    expect(page.locator("#hires-size")).to_have_text("→ 120×80")
    # The server-rendered recent strip gives "Reuse" the last seed after a reload too.
    page.fill("#id_seed", "5")
    page.click("#seed-reuse")
    expect(page.locator("#id_seed")).to_have_value(seed)

    # A prefill link wins over the kept settings; "reset" forgets them.
    page.goto(f"{asgi_live_server}/?prompt=owl&steps=3")
    expect(page.locator("#id_prompt")).to_have_value("owl")
    expect(page.locator("#id_negative_prompt")).to_have_value("")
    expect(page.locator("#id_sampler")).to_have_value("")
    expect(page.locator("#id_enable_hr")).not_to_be_checked()
    # A link may carry the A1111 fields too.
    page.goto(f"{asgi_live_server}/?prompt=owl&sampler_name=DPM%2B%2B+2M&scheduler=Karras"
              "&clip_skip=2&enable_hr=true&hr_scale=1.25&hr_upscaler=Lanczos")
    _expect_form(page, prompt="owl", sampler="DPM++ 2M", scheduler="Karras", clip_skip="2",
                 hr_scale="1.25", hr_upscaler="Lanczos")
    expect(page.locator("#id_enable_hr")).to_be_checked()
    page.goto(f"{asgi_live_server}/")
    expect(page.locator("#id_prompt")).to_have_value("owl")
    # Each account keeps its own settings in a shared browser.
    log_in(page, asgi_live_server, "mallory")
    expect(page.locator("#id_prompt")).to_have_value("")
    expect(page.locator("#id_enable_hr")).not_to_be_checked()
    log_in(page, asgi_live_server, "alice")
    expect(page.locator("#id_prompt")).to_have_value("owl")
    page.click("#settings-reset")
    page.wait_for_url(f"{asgi_live_server}/")
    expect(page.locator("#id_prompt")).to_have_value("")
    expect(page.locator("#id_steps")).to_have_value("4")
    expect(page.locator("#id_enable_hr")).not_to_be_checked()
    assert errors == []


#: A DataTransfer holding one file, built in the page from base64 bytes.
_TRANSFER_JS = """([b64, name, mime]) => {
  const bin = atob(b64); const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  const dt = new DataTransfer();
  dt.items.add(new File([bytes], name, { type: mime }));
  return dt;
}"""


def _transfer(page, data: bytes, name: str, mime: str = "image/png"):
    return page.evaluate_handle(_TRANSFER_JS, [base64.b64encode(data).decode(), name, mime])


def _drop_file(page, selector: str, data: bytes, name: str) -> None:
    """Drop a file on ``selector`` as a person dragging it from the desktop would."""
    transfer = _transfer(page, data, name)
    for event in ("dragenter", "dragover", "drop"):
        page.dispatch_event(selector, event, {"dataTransfer": transfer})


def _paste_file(page, data: bytes, name: str) -> None:
    """Paste a file (an image copied to the clipboard) into the page."""
    page.evaluate("dt => document.body.dispatchEvent(new ClipboardEvent('paste',"
                  " {clipboardData: dt, bubbles: true, cancelable: true}))",
                  _transfer(page, data, name))


@pytest.fixture
def checkpoint_profile(db):
    """A profile named as the infotext's checkpoint (PNG Info resolves ``Model:`` by name)."""
    from tests.factories import ModelProfileFactory

    return ModelProfileFactory(slug="v1-5-pruned-emaonly", name="SD 1.5 pruned",
                               is_default=False)


def test_dropped_a1111_png_fills_the_form(asgi_live_server, checkpoint_profile, page_and_errors,
                                          tmp_path):
    page, errors = page_and_errors
    expect(page.locator("#id_model")).to_have_value("fake")
    # Rows and hires settings of an earlier request are replaced by the file's.
    page.fill("#lora-search", "")
    page.click("#lora-add")
    page.locator("#lora-list .lora-name").fill("leftover")
    sent = _sent(page, "/api/png-info/")
    _drop_file(page, "#pnginfo-drop", _png(text={"parameters": A1111_INFOTEXT}), "a1111.png")

    expect(page.locator("#pnginfo-result")).to_be_visible()
    expect(page.locator("#pnginfo-summary")).to_contain_text("Filled")
    _expect_form(page, model="v1-5-pruned-emaonly", prompt=A1111_PROMPT,
                 negative_prompt="blurry, low quality", steps="7", sampler="DPM++ 2M",
                 scheduler="Karras", guidance_scale="6.5", seed="1234567", width="64",
                 height="96", clip_skip="2", hr_scale="1.5", hr_second_pass_steps="3",
                 hr_upscaler="Latent", denoising_strength="0.45")
    expect(page.locator("#id_enable_hr")).to_be_checked()
    expect(page.locator("#hires-size")).to_have_text("→ 96×144")
    expect(page.locator("#lora-list .lora-row")).to_have_count(0)
    expect(page.locator("#pnginfo-raw")).to_contain_text("Version: v1.10.1")
    # The LoRA the library lacks is listed with its Civitai lookup by hash; the checkpoint was
    # found (its profile is selected), so it is not.
    missing = page.locator("#pnginfo-missing .pnginfo-missing-item")
    expect(missing).to_have_count(1)
    expect(missing).to_have_attribute("data-name", "sumi-ink")
    expect(missing).to_contain_text("hash 0123456789ab")
    expect(missing.locator("a.pnginfo-civitai")).to_have_attribute(
        "href", "https://civitai.com/api/v1/model-versions/by-hash/0123456789ab")
    expect(page.locator("#pnginfo-summary")).to_contain_text("1 missing from the library")
    assert len(sent) == 1 and "multipart/form-data" in sent[0].headers["content-type"]

    shots = _shots_dir(tmp_path)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(shots / "generate-pnginfo-desktop.png"), full_page=True)

    # "Send to img2img" makes the dropped file the source of the other tab.
    page.click("#pnginfo-to-img2img")
    expect(page.locator("#tab-img2img")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#mask-info")).to_contain_text("64×96 · img2img")
    page.click("#tab-txt2img")

    # The same through "choose a file"; an image without parameters says so.
    page.set_input_files("#pnginfo-file", files=[{"name": "plain.png", "mimeType": "image/png",
                                                  "buffer": _png()}])
    expect(page.locator("#pnginfo-result")).to_have_class(re.compile(r"\bpnginfo-error\b"))
    expect(page.locator("#id_steps")).to_have_value("7")
    assert errors == []


def test_img2img_tab_paints_a_mask_and_inpaints(asgi_live_server, page_and_errors, tmp_path):
    from images.models import GenerationRequest

    page, errors = page_and_errors
    page.click("#tab-img2img")
    expect(page.locator("#edit-source")).to_be_visible()
    expect(page.locator("#hires")).to_be_hidden()
    expect(page.locator("#pnginfo")).to_be_hidden()
    # /api/edit/ takes the sampler, schedule type, clip skip and VAE as txt2img does.
    for name in ("sampler", "scheduler", "clip_skip", "vae"):
        expect(page.locator(f"#id_{name}")).to_be_enabled()
    expect(page.locator("#edit-fields-note")).to_be_hidden()
    page.fill("#id_clip_skip", "2")
    page.fill("#id_prompt", "a red door")

    # Without a source image the page says what is missing and sends nothing.
    sent = _sent(page, "/api/edit/")
    page.click("#generate-btn")
    expect(page.locator("#error")).to_contain_text("source image")
    assert sent == []

    # A pasted image becomes the source; a chosen file replaces it.
    _paste_file(page, _png(size=(40, 24)), "pasted.png")
    expect(page.locator("#mask-info")).to_contain_text("40×24 · img2img")
    page.set_input_files("#edit-file", files=[{"name": "src.png", "mimeType": "image/png",
                                               "buffer": _png(size=(80, 64))}])
    expect(page.locator("#mask-stage")).to_be_visible()
    expect(page.locator("#mask-info")).to_contain_text("80×64 · img2img")
    expect(page.locator("#id_width")).to_have_value("80")
    expect(page.locator("#id_height")).to_have_value("64")

    # Paint a stroke across the left half of the image.
    page.locator("#mask-canvas").scroll_into_view_if_needed()
    box = page.locator("#mask-canvas").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.1, box["y"] + box["height"] * 0.5)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.5, steps=5)
    page.mouse.up()
    expect(page.locator("#mask-info")).to_contain_text("inpaint")
    page.fill("#id_strength", "0.6")
    page.fill("#id_seed", "77")
    shots = _shots_dir(tmp_path)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(shots / "generate-inpaint-desktop.png"), full_page=True)

    page.click("#generate-btn")
    _wait_done(page)
    # (Playwright does not expose a multipart body with files: the row tells what arrived.)
    assert len(sent) == 1
    assert "multipart/form-data" in sent[0].headers["content-type"]
    row = GenerationRequest.objects.get()
    assert (row.kind, row.width, row.height, row.seed, row.strength, row.prompt) == (
        "inpaint", 80, 64, 77, 0.6, "a red door")
    assert row.clip_skip == 2  # the A1111 fields reach the edit too
    # The mask that arrived is white where painted (left part), black elsewhere, 80×64.
    from PIL import Image as PILImage

    mask = PILImage.open(row.mask.path).convert("L")
    assert mask.size == (80, 64)
    assert mask.getpixel((20, 32)) == 255 and mask.getpixel((70, 32)) == 0
    expect(page.locator("#result img")).to_have_count(1)
    page.wait_for_function("() => { const i = document.querySelector('#result img');"
                           " return i.complete && i.naturalWidth === 80"
                           " && i.naturalHeight === 64; }")

    # Cleared mask: img2img.
    page.click("#mask-clear")
    expect(page.locator("#mask-info")).to_contain_text("img2img")
    page.click("#generate-btn")
    _wait_done(page)
    last = GenerationRequest.objects.order_by("-pk").first()
    assert (last.kind, bool(last.mask)) == ("img2img", False)
    assert errors == []


@pytest.fixture
def sd_profile_and_loras(db, tmp_path):
    """A ``pipeline_type="sd"`` profile on the fake provider and LoRAs of three families."""
    from loras.models import LibraryRoot, LoraModel
    from tests.factories import ModelProfileFactory

    ModelProfileFactory(slug="sd15", name="SD 1.5 look-alike", pipeline_type="sd",
                        is_default=False)
    ModelProfileFactory(slug="xl", name="SDXL look-alike", pipeline_type="sdxl",
                        default_width=128, default_height=128, is_default=False)
    root = LibraryRoot.objects.create(name="main", path=str(tmp_path / "loras"))
    for name, base in (("ink-xl", "SDXL 1.0"), ("ink-15", "SD 1.5"), ("ink-flux", "Flux.1 D"),
                       ("ink-any", "")):
        LoraModel.objects.create(root=root, relative_path=f"{name}.safetensors",
                                 file_name=f"{name}.safetensors", name=name, base_model=base)


def test_lora_picker_lists_compatible_loras_first(asgi_live_server, sd_profile_and_loras,
                                                  page_and_errors):
    page, errors = page_and_errors
    page.select_option("#id_model", "sd15")
    page.fill("#lora-search", "ink")
    items = page.locator("#lora-results .lora-result")
    expect(items).to_have_count(4)
    listed = items.evaluate_all("bs => bs.map(b => [b.dataset.name, b.dataset.fits])")
    assert listed[:2] == [["ink-15", "true"], ["ink-any", "unknown"]]
    assert sorted(listed[2:]) == [["ink-flux", "false"], ["ink-xl", "false"]]
    expect(items.nth(2)).to_contain_text("LoRA, not for this model (SD1.x/SD2.x)")
    expect(page.locator("#lora-search-msg")).to_contain_text("2 of 4 are for another model family")

    # Another model re-sorts the open list.
    page.select_option("#id_model", "xl")
    expect(items.first).to_have_attribute("data-name", "ink-xl")
    items.locator("text=ink-flux").click()  # added, but marked
    expect(page.locator("#lora-list .lora-row.lora-incompatible .lora-name")).to_have_value(
        "ink-flux")
    assert errors == []


def test_screenshots_desktop_and_phone(asgi_live_server, page_and_errors, tmp_path):
    """The page with hires fix open, desktop and 390×844; nothing wider than the phone."""
    page, errors = page_and_errors
    shots = _shots_dir(tmp_path)
    page.fill("#id_prompt", "a lighthouse on a cliff at dusk, oil painting")
    page.check("#id_enable_hr")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(shots / "generate-desktop.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.locator("#hires-fields")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(shots / "generate-phone.png"), full_page=True)
    page.click("#tab-img2img")
    page.set_input_files("#edit-file", files=[{"name": "src.png", "mimeType": "image/png",
                                               "buffer": _png(size=(256, 192))}])
    expect(page.locator("#mask-stage")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(shots / "generate-phone-img2img.png"), full_page=True)
    assert errors == []
