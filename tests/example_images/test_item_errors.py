"""Issue 15, example images: a job with per-item errors lists them (``result.errors`` as
``{"item", "reason"}``) in the API and on the LoRA page; the example folder is shown as a path
relative to the library root, not a bare SHA-256; the model profile of local example
generation is a select of the existing profiles.

Downloads run against the fake Civitai server over real HTTP; generation on the fake engine;
the page in chromium against the real ASGI server (``EXAMPLES_SCREENSHOT_DIR`` keeps the
screenshot)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright import sync_api as playwright_api

from example_images.services.download import example_download_run, example_download_start
from example_images.services.generate import example_generate_run
from jobs.models import Job
from loras.models import LibraryRoot
from tests.factories import ModelProfileFactory
from tests.support.browser import launch, log_in
from tests.support.servers import start_server

expect = playwright_api.expect


def _run(job) -> Job:
    for _ in range(10):
        job = example_download_run(job_id=str(job.pk))
        if job.status != Job.Status.QUEUED:
            break
    return job


@pytest.mark.django_db
def test_download_errors_name_the_item_and_the_reason(api_client, fake_civitai, published,
                                                      user):
    lora = published("m-errors", 190, images=4)
    del fake_civitai.images["190-1.png"], fake_civitai.images["190-3.png"]
    job = _run(example_download_start(user=user, enqueue=False))
    assert job.status == Job.Status.SUCCEEDED
    errors = job.result["errors"]
    assert [e["item"] for e in errors] == ["m-errors · Civitai image 190001",
                                           "m-errors · Civitai image 190003"]
    assert all("404" in e["reason"] and e["lora"] == lora.pk for e in errors)
    assert job.result["errors_total"] == 2
    assert job.message == "2 images downloaded, 2 errors"
    # The same list in the API: the download status and the job's snapshot.
    status = api_client.get("/api/example-images/status/").json()
    assert [(e["item"], e["reason"]) for e in status["result"]["errors"]] == [
        (e["item"], e["reason"]) for e in errors]
    snapshot = api_client.get(f"/api/jobs/{job.pk}/").json()
    assert snapshot["result"]["errors"] == errors


@pytest.mark.django_db
def test_a_lora_not_on_civitai_is_an_item_error(fake_civitai, make_lora, user):
    make_lora("unpublished", seed=7)  # no version id, hash unknown to the fake Civitai
    job = _run(example_download_start(user=user, enqueue=False))
    assert job.status == Job.Status.SUCCEEDED
    assert [(e["item"], e["reason"]) for e in job.result["errors"]] == [
        ("unpublished", "Not on Civitai.")]


@pytest.mark.django_db
def test_generation_errors_name_the_plan_item(api_client, make_lora, fake_profile):
    lora = make_lora("genmix")
    response = api_client.post(f"/api/loras/{lora.pk}/example-images/generate/",
                               {"prompts": ["a calm lake", "<fail> please"],
                                "weights": [0.5]}, format="json")
    assert response.status_code == 202, response.content
    job = example_generate_run(job_id=response.json()["id"])
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    assert len(job.result["examples"]) == 1
    (error,) = job.result["errors"]
    assert error["item"] == '"<fail> please" at weight 0.5' and error["index"] == 1
    assert error["reason"] and error["code"]
    assert job.message == "1 example image, 1 failed"
    assert api_client.get(f"/api/jobs/{job.pk}/").json()["result"]["errors"] == [error]


@pytest.mark.django_db
def test_folder_is_a_path_relative_to_the_library_root(api_client, make_lora, settings,
                                                       tmp_path):
    lora = make_lora("folders", seed=11)
    body = api_client.get(f"/api/example-images/open-folder/?lora={lora.pk}").json()
    # The examples root of these tests is <tmp>/examples, outside the LoRA root.
    assert body["folder"] == lora.sha256
    assert body["path"] == f"examples/{lora.sha256}"
    assert (body["exists"], body["images"]) == (False, 0)
    # Examples kept inside a library root: relative to it, named by the root's name.
    settings.EXAMPLE_IMAGES_ROOT = tmp_path / "loras" / "example_images"
    LibraryRoot.objects.filter(pk=lora.root_id).update(name="My LoRAs")
    body = api_client.get(f"/api/example-images/open-folder/?lora={lora.pk}").json()
    assert body["path"] == f"My LoRAs/example_images/{lora.sha256}"


@pytest.mark.django_db
def test_model_profile_is_a_select_of_existing_profiles(client, user, make_lora, fake_profile):
    ModelProfileFactory(slug="second", name="Second model", provider="fake", is_default=False)
    ModelProfileFactory(slug="off", name="Disabled model", provider="fake", is_default=False,
                        enabled=False)
    lora = make_lora("selects")
    client.force_login(user)
    page = client.get(f"/loras/{lora.pk}/").content.decode()
    assert '<select id="ex-gen-model"' in page and 'id="ex-gen-model" placeholder' not in page
    assert '<option value="fake">' in page and '<option value="second">Second model' in page
    assert "Disabled model" not in page


@pytest.mark.django_db(transaction=True)
def test_the_page_lists_download_errors_and_shows_the_folder_path(
        published, fake_civitai, fake_profile, user, settings, tmp_path, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    lora = published("paged-errors", 195, images=3)
    del fake_civitai.images["195-2.png"]
    env = {"LORA_TRASH_DIR": str(tmp_path / "trash"), "LORA_ROOTS": str(lora.root.path),
           "EXAMPLE_IMAGES_ROOT": str(settings.EXAMPLE_IMAGES_ROOT),
           "EXAMPLE_IMAGES_PAGE_SIZE": "3", "CIVITAI_BASE_URL": fake_civitai.base_url,
           "OUTBOUND_ALLOW_PRIVATE": "1", "OUTBOUND_ALLOWED_HOSTS": "127.0.0.1,localhost"}
    errors: list[str] = []
    with start_server(media_root=settings.MEDIA_ROOT, embedded=True, extra_env=env) as url:
        with playwright_api.sync_playwright() as p:
            browser = launch(p)
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.set_default_timeout(20_000)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            try:
                log_in(page, url, next_url=f"/loras/{lora.pk}/")
                page.locator("#ex-force").click()
                expect(page.locator("#ex-dl-status")).to_have_text("Download succeeded")
                expect(page.locator("#ex-dl-detail")).to_contain_text(
                    "2 images downloaded, 1 error")
                expect(page.locator("#ex-dl-errors-summary")).to_have_text("1 error")
                page.locator("#ex-dl-errors-summary").click()
                item = page.locator("#ex-dl-errors-list li")
                expect(item).to_have_count(1)
                expect(item).to_contain_text("paged-errors · Civitai image 195002: ")
                expect(item).to_contain_text("404")
                page.locator("#ex-open-folder").click()
                expect(page.locator("#ex-notice")).to_have_text(
                    f"Folder: examples/{lora.sha256} — 2 example images.")
                page.locator("#ex-generate summary").click()
                expect(page.locator("#ex-gen-model option")).to_have_text(["Fake (default)"])
                out = Path(os.environ.get("EXAMPLES_SCREENSHOT_DIR") or tmp_path)
                out.mkdir(parents=True, exist_ok=True)
                page.evaluate("window.scrollTo(0, 0)")
                page.screenshot(path=str(out / "examples-item-errors.png"), full_page=True)
            finally:
                browser.close()
    assert errors == []
