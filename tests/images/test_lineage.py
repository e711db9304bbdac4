"""Lineage (issue 15): every image knows its operation and source, the detail page and the API
link both ways, "generate again" repeats the same operation with the same inputs, an edit keeps
its source's LoRAs, and an edit's job counts the steps that actually run.

Images are made the way users make them: POST /api/generate/, /api/edit/, /api/upscale/ and
/api/images/<id>/repeat/, run by ``generation_run`` on the fake engine (the img2img step count
on the real tiny diffusers pipeline)."""

import io
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.files.base import ContentFile
from PIL import Image as PILImage

from images.models import GenerationRequest, Image
from images.services import generation_run
from images.services.edit import edit_create
from jobs.models import Job
from tests.factories import LoraFactory, ModelProfileFactory

pytestmark = pytest.mark.django_db


def run(resp) -> Image:
    """Run the request a 202 answer queued; its (first) image."""
    assert resp.status_code == 202, resp.content
    job = generation_run(request_id=resp.json()["id"])
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    return Image.objects.filter(request_id=resp.json()["id"]).first()


def mask_png(size=(64, 64)) -> ContentFile:
    mask = PILImage.new("L", size, 0)
    mask.paste(255, (0, 0, size[0] // 2, size[1]))
    buf = io.BytesIO()
    mask.save(buf, format="PNG")
    return ContentFile(buf.getvalue(), name="m.png")


@pytest.fixture
def lora(db):
    return LoraFactory(name="warm-light")


@pytest.fixture
def txt(api_client, fake_profile, lora, django_capture_on_commit_callbacks) -> Image:
    """A txt2img made with a LoRA picked in the LoRA field (not typed as a tag)."""
    with django_capture_on_commit_callbacks(execute=False):
        resp = api_client.post("/api/generate/", {
            "prompt": "a lighthouse at dusk", "seed": 42, "steps": 8, "width": 64,
            "height": 64, "loras": [{"lora": lora.name, "weight": 0.7}]}, format="json")
    return run(resp)


def post(client, url, callbacks, **body):
    with callbacks(execute=False):
        return client.post(url, body, format="json")


def test_upscale_knows_its_source_and_the_pages_link_both_ways(
        api_client, client, user, txt, django_capture_on_commit_callbacks):
    up = run(post(api_client, "/api/upscale/", django_capture_on_commit_callbacks,
                  image_id=txt.pk, factor=2))
    assert (up.kind, up.source_id) == ("upscale", txt.pk)

    data = api_client.get(f"/api/images/{up.pk}/").json()
    assert data["operation"] == "upscale" and data["operation_label"] == "upscale"
    assert data["source"] == {"id": txt.pk, "url": txt.file.url,
                              "detail_url": f"/images/{txt.pk}/"}
    assert data["derived"] == []
    src = api_client.get(f"/api/images/{txt.pk}/").json()
    assert (src["operation"], src["source"], src["derived"]) == ("txt2img", None, [up.pk])
    listed = {i["id"]: i for i in api_client.get("/api/images/").json()["results"]}
    assert listed[up.pk]["source"]["id"] == txt.pk and listed[txt.pk]["derived"] == [up.pk]

    client.force_login(user)
    page = client.get(f"/images/{up.pk}/").content.decode()
    assert re.search(r'id="param-operation"[^>]*>upscale ×2<', page)
    assert f'href="/images/{txt.pk}/" id="source-link"' in page
    assert "Lanczos" in page and ">Steps<" not in page and "diffusers" not in page
    assert "<th>LoRAs</th>" not in page  # an upscale applies none; its source has them
    assert 'id="again-btn" data-operation="upscale"' in page  # a repeat, not a txt2img link
    page = client.get(f"/images/{txt.pk}/").content.decode()
    assert f'href="/images/{up.pk}/"' in page and f"#{up.pk} · upscale" in page


def test_generate_again_re_upscales_the_same_source(
        api_client, txt, django_capture_on_commit_callbacks):
    up = run(post(api_client, "/api/upscale/", django_capture_on_commit_callbacks,
                  image_id=txt.pk, factor=4))
    again = post(api_client, f"/api/images/{up.pk}/repeat/", django_capture_on_commit_callbacks)
    gen = GenerationRequest.objects.get(pk=again.json()["id"])
    assert (gen.kind, gen.source_image_id, gen.upscale_factor, gen.upscaler, gen.steps) == (
        "upscale", txt.pk, 4, "lanczos", 1)
    second = run(again)
    assert (second.kind, second.source_id, second.width, second.height) == (
        "upscale", txt.pk, 256, 256)
    assert sorted(api_client.get(f"/api/images/{txt.pk}/").json()["derived"]) == [
        up.pk, second.pk]


def test_an_edit_keeps_the_source_loras_and_generate_again_repeats_it(
        api_client, user, txt, lora, django_capture_on_commit_callbacks):
    assert txt.prompt == "a lighthouse at dusk"  # the LoRA is not a tag in the prompt
    # The service: LoRAs not said keep the source's.
    gen = edit_create(user=user, params={"image_id": txt.pk, "strength": 0.5, "steps": 8},
                      enqueue=False)
    assert [(x["lora_id"], x["weight"]) for x in gen.loras] == [(lora.pk, 0.7)]
    # The page's request: the ticked LoRAs are sent; the result records them.
    edit = run(post(api_client, "/api/edit/", django_capture_on_commit_callbacks,
                    image_id=txt.pk, prompt="a lighthouse at dawn", strength=0.5, steps=8,
                    loras=[{"lora": str(lora.pk), "weight": 0.7}]))
    assert (edit.kind, edit.source_id) == ("img2img", txt.pk)
    assert [(x["name"], x["weight"]) for x in edit.loras] == [("warm-light", 0.7)]
    assert "warm-light" in edit.parameters  # Lora hashes in the infotext

    again = post(api_client, f"/api/images/{edit.pk}/repeat/", django_capture_on_commit_callbacks)
    gen = GenerationRequest.objects.get(pk=again.json()["id"])
    assert (gen.kind, gen.source_image_id, gen.strength, gen.steps, gen.seed, gen.prompt) == (
        "img2img", txt.pk, 0.5, 8, edit.seed, "a lighthouse at dawn")
    assert [(x["lora_id"], x["weight"]) for x in gen.loras] == [(lora.pk, 0.7)]
    assert gen.job.total_steps == 4  # 8 steps x 0.5 strength, from the start
    second = run(again)
    assert (second.kind, second.source_id, second.seed) == ("img2img", txt.pk, edit.seed)


def test_generate_again_of_an_inpaint_keeps_its_mask(
        api_client, user, txt, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        resp = api_client.post("/api/edit/", {"image_id": txt.pk, "strength": 0.75, "steps": 4,
                                              "mask": mask_png()}, format="multipart")
    inp = run(resp)
    assert inp.kind == "inpaint"
    again = post(api_client, f"/api/images/{inp.pk}/repeat/", django_capture_on_commit_callbacks,
                 new_seed=True)
    gen = GenerationRequest.objects.get(pk=again.json()["id"])
    first = GenerationRequest.objects.get(pk=inp.request_id)
    assert (gen.kind, gen.source_image_id, gen.strength) == ("inpaint", txt.pk, 0.75)
    with gen.mask.open("rb") as a, first.mask.open("rb") as b:
        assert a.read() == b.read()
    assert run(again).source_id == txt.pk


def test_generate_again_of_a_txt2img_and_the_hires_operation(
        api_client, client, user, txt, lora, django_capture_on_commit_callbacks):
    again = post(api_client, f"/api/images/{txt.pk}/repeat/", django_capture_on_commit_callbacks)
    gen = GenerationRequest.objects.get(pk=again.json()["id"])
    assert (gen.kind, gen.seed, gen.steps, gen.width, gen.prompt) == (
        "txt2img", txt.seed, 8, 64, "a lighthouse at dusk")
    assert [(x["lora_id"], x["weight"]) for x in gen.loras] == [(lora.pk, 0.7)]

    # A hires-fixed txt2img: its operation, and its fields in the generate-again link.
    GenerationRequest.objects.filter(pk=txt.request_id).update(
        enable_hr=True, hr_scale=1.5, hr_upscaler="Latent", hr_second_pass_steps=6,
        hr_denoising_strength=0.45, sampler="DPM++ 2M", scheduler="Karras", clip_skip=2)
    data = api_client.get(f"/api/images/{txt.pk}/").json()
    assert (data["operation"], data["operation_label"]) == ("hires", "txt2img + hires fix")
    client.force_login(user)
    page = client.get(f"/images/{txt.pk}/").content.decode()
    assert "txt2img + hires fix" in page and 'id="param-hires"' in page
    href = re.search(r'id="regenerate-link" href="([^"]+)"', page).group(1)
    query = parse_qs(urlsplit(href.replace("&amp;", "&")).query)
    assert {k: query[k] for k in ("sampler", "scheduler", "clip_skip", "enable_hr", "hr_scale",
                                  "hr_upscaler", "hr_second_pass_steps", "denoising_strength",
                                  "seed", "steps", "lora")} == {
        "sampler": ["DPM++ 2M"], "scheduler": ["Karras"], "clip_skip": ["2"],
        "enable_hr": ["1"], "hr_scale": ["1.5"], "hr_upscaler": ["Latent"],
        "hr_second_pass_steps": ["6"], "denoising_strength": ["0.45"], "seed": [str(txt.seed)],
        "steps": ["8"], "lora": ["warm-light:0.7"]}
    # The repeat through the API carries them into the new request.
    again = post(api_client, f"/api/images/{txt.pk}/repeat/", django_capture_on_commit_callbacks)
    assert again.status_code == 202, again.content
    gen = GenerationRequest.objects.get(pk=again.json()["id"])
    assert (gen.sampler, gen.scheduler, gen.clip_skip, gen.enable_hr, gen.hr_scale,
            gen.hr_upscaler, gen.hr_second_pass_steps, gen.hr_denoising_strength) == (
        "DPM++ 2M", "Karras", 2, True, 1.5, "Latent", 6, 0.45)
    assert (gen.width, gen.height, gen.seed) == (64, 64, txt.seed)  # the first pass's size


def test_lineage_follows_visibility(api_client, client, other_user, user, txt,
                                    django_capture_on_commit_callbacks):
    up = run(post(api_client, "/api/upscale/", django_capture_on_commit_callbacks,
                  image_id=txt.pk, factor=2))
    edit = run(post(api_client, "/api/edit/", django_capture_on_commit_callbacks,
                    image_id=txt.pk, strength=0.5, steps=4))
    Image.objects.filter(pk__in=[up.pk, txt.pk]).update(is_public=True)
    from rest_framework.test import APIClient

    other = APIClient()
    other.force_authenticate(other_user)
    data = other.get(f"/api/images/{txt.pk}/").json()
    assert data["derived"] == [up.pk]  # the private edit is not named
    assert other.get(f"/api/images/{up.pk}/").json()["source"]["id"] == txt.pk
    Image.objects.filter(pk=txt.pk).update(is_public=False)
    assert other.get(f"/api/images/{up.pk}/").json()["source"] is None
    client.force_login(other_user)
    page = client.get(f"/images/{up.pk}/").content.decode()
    assert "a private image" in page and f"/images/{txt.pk}/" not in page
    assert 'id="again-btn"' not in page  # only the owner can repeat
    assert other.post(f"/api/images/{up.pk}/repeat/", {}, format="json").status_code == 404
    assert other.post(f"/api/images/{edit.pk}/repeat/", {}, format="json").status_code == 404


def test_repeat_when_the_source_is_gone_uses_the_recorded_input(
        api_client, txt, django_capture_on_commit_callbacks):
    up = run(post(api_client, "/api/upscale/", django_capture_on_commit_callbacks,
                  image_id=txt.pk, factor=2))
    txt.delete()
    up.refresh_from_db()
    assert up.source_id is None
    assert api_client.get(f"/api/images/{up.pk}/").json()["source"] is None
    again = run(post(api_client, f"/api/images/{up.pk}/repeat/",
                     django_capture_on_commit_callbacks))
    assert (again.kind, again.width, again.height) == ("upscale", 128, 128)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_img2img_job_counts_the_steps_that_run_from_start_to_end(
        api_client, user, tmp_path_factory, django_capture_on_commit_callbacks):
    """On the real tiny diffusers pipeline: 8 steps at strength 0.5 run 4 denoising steps; the
    job says 4 when queued, while running and when done (no jump from 8 to 4)."""
    from providers import demo
    from providers.diffusers_local import clear_pipeline_cache

    model = demo.build_demo_model(tmp_path_factory.mktemp("tiny") / "demo-sd-tiny")
    ModelProfileFactory(slug="tiny", provider="diffusers_local", pipeline_type="sd",
                        model_path=str(model), is_default=False)
    src = Image.objects.create(user=user, width=64, height=64, seed=1, steps=4,
                               guidance_scale=5.0, prompt="a harbour", provider="fake",
                               model_name="Fake",
                               file=ContentFile(mask_png().read(), name="src.png"))
    resp = post(api_client, "/api/edit/", django_capture_on_commit_callbacks, image_id=src.pk,
                model="tiny", steps=8, strength=0.5)
    job_id = resp.json()["job"]
    assert Job.objects.get(pk=job_id).total_steps == 4
    seen = []  # (total the engine reports, total the job said just before) at every step
    try:
        job = generation_run(request_id=resp.json()["id"], listener=lambda step, total: seen.append(
            (total, Job.objects.values_list("total_steps", flat=True).get(pk=job_id))))
    finally:
        clear_pipeline_cache()
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    assert seen and set(seen) == {(4, 4)}, seen
    assert (job.step, job.total_steps) == (4, 4)


def test_lineage_fields_cost_no_query_per_image(api_client, user, txt):
    """operation, source and derived come from the page's joins and one prefetch: listing 3
    or 12 images takes the same number of queries."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories import ImageFactory

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert api_client.get("/api/images/?page_size=50").status_code == 200
        return len(ctx.captured_queries)

    ImageFactory(user=user, source=txt, kind="upscale")
    ImageFactory(user=user, source=txt, kind="img2img")
    few = count()
    for _ in range(3):
        parent = ImageFactory(user=user)
        ImageFactory(user=user, source=parent, kind="img2img")
        ImageFactory(user=user, source=parent, kind="upscale")
    assert count() == few
