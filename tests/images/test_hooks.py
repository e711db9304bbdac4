"""Post-generation hooks: tags, usage with estimated cost, optional narration, a signed and
retried webhook to a real HTTP server on loopback, and isolation of a failing hook."""

import hashlib
import hmac
import io
import json
import wave
from decimal import Decimal

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from images.hooks import prompt_terms
from images.models import Image, Style, Tag, UsageLog
from images.services import generation_create, generation_run
from jobs.models import Job
from loras.models import LibraryRoot, LoraModel
from tests.support.wait import wait_until

pytestmark = pytest.mark.django_db

SECRET = "s3cret-webhook-key"


def broken_hook(*, request, images, job, started):
    """A hook that writes then fails: its write must be rolled back, nothing else harmed."""
    Tag.objects.create(name="written-by-broken-hook", slug="written-by-broken-hook")
    raise RuntimeError("boom")


@pytest.fixture
def lora(tmp_path):
    path = tmp_path / "ink.safetensors"
    path.write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}abc")
    root = LibraryRoot.objects.create(path=str(tmp_path))
    return LoraModel.objects.create(root=root, relative_path="ink.safetensors",
                                    file_name="ink.safetensors", name="ink", sha256="ab" * 32,
                                    autov3="cd" * 32, tags=["Ink Wash", "style"],
                                    trigger_words=["inkstyle"])


def run(user, **params) -> Job:
    gen = generation_create(user=user, params={"prompt": "a lighthouse", **params},
                            enqueue=False)
    return generation_run(request_id=gen.pk)


def test_prompt_terms():
    assert prompt_terms("(masterpiece:1.2), a red fox, <lora:ink:0.5> snow, best quality, "
                        "a very long descriptive phrase here, Red Fox, [the moon]") == [
        "red fox", "snow", "moon"]


def test_tags_and_usage_with_cost(user, fake_profile, lora, settings):
    settings.PROVIDER_COSTS = {"fake": 0.05}
    style = Style.objects.create(owner=user, name="Sumi", prompt_template="{prompt}, sumi-e")
    job = run(user, prompt="red fox, snow <lora:ink:0.6>", style=str(style.pk), n=2)
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    assert job.result["hook_errors"] == []
    images = list(Image.objects.all())
    assert len(images) == 2
    for image in images:
        assert {t.name for t in image.tags.all()} == {
            "red fox", "snow", "sumi-e", "sumi", "ink wash", "style", "inkstyle"}
        assert image.thumbnail
    log = UsageLog.objects.get()
    assert log.image_count == 2 and log.lora_names == ["ink"]
    assert log.estimated_cost == Decimal("0.1000") and log.provider == "fake"


def test_each_generation_counts_one_use_of_each_lora(user, fake_profile, lora):
    assert (lora.usage_count, lora.last_used_at) == (0, None)
    assert run(user, prompt="a fox <lora:ink:0.6>", n=3).status == Job.Status.SUCCEEDED
    lora.refresh_from_db()
    assert lora.usage_count == 1 and lora.last_used_at is not None  # one generation, 3 images
    first = lora.last_used_at
    run(user, prompt="a heron", loras=[{"lora": "ink", "weight": 0.5}])
    run(user, prompt="no lora at all")
    lora.refresh_from_db()
    assert lora.usage_count == 2 and lora.last_used_at >= first


def test_model_specific_cost_and_free_default(user, fake_profile, settings):
    settings.PROVIDER_COSTS = {"fake/Fake": 0.2, "fake": 0.05}
    run(user)
    settings.PROVIDER_COSTS = {}
    run(user)
    assert sorted(UsageLog.objects.values_list("estimated_cost", flat=True)) == [
        Decimal("0"), Decimal("0.2")]


def test_a_failing_hook_is_isolated(user, fake_profile, settings):
    settings.IMAGES_POST_GENERATION_HOOKS = [
        "images.hooks.hook_thumbnails", "tests.images.test_hooks.broken_hook",
        "images.hooks.hook_tags", "images.hooks.no_such_hook", "images.hooks.hook_usage"]
    job = run(user, prompt="a red fox")
    assert job.status == Job.Status.SUCCEEDED
    errors = job.result["hook_errors"]
    assert [e["hook"] for e in errors] == ["broken_hook", "no_such_hook"]
    assert errors[0]["code"] == "RuntimeError" and errors[0]["message"] == "boom"
    assert Image.objects.count() == 1 and UsageLog.objects.count() == 1
    assert not Tag.objects.filter(name="written-by-broken-hook").exists()
    assert Tag.objects.filter(name="red fox").exists()  # later hooks still ran
    assert Job.objects.get(pk=job.pk).result["hook_errors"] == errors


def test_auto_narration_hook(user, fake_profile, settings):
    settings.NARRATION_AUTO = True
    job = run(user, prompt="a lighthouse in the storm")
    assert job.status == Job.Status.SUCCEEDED and job.result["hook_errors"] == []
    image = Image.objects.get()
    with image.audio.open("rb") as fh, wave.open(io.BytesIO(fh.read())) as w:
        assert w.getnframes() / w.getframerate() > 0.5


def test_auto_narration_without_engine_is_a_hook_error(user, fake_profile, settings):
    settings.NARRATION_AUTO = True
    settings.NARRATION_ESPEAK_PATH = "/nonexistent/espeak-ng"
    job = run(user)
    assert job.status == Job.Status.SUCCEEDED
    assert [(e["hook"], e["code"]) for e in job.result["hook_errors"]] == [
        ("hook_narration", "tts_unavailable")]
    assert not Image.objects.get().audio


def _verify(request) -> dict:
    body = request.get_data()
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["X-Atelier-Signature"], expected)
    return json.loads(body)


@pytest.mark.django_db(transaction=True)
def test_webhook_is_signed_and_retried(user, fake_profile, settings, httpserver: HTTPServer,
                                       celery_worker):
    """The delivery is its own Celery task on a real worker: two 503s, then a 2xx."""
    settings.WEBHOOK_URL = httpserver.url_for("/hook")
    settings.WEBHOOK_SECRET = SECRET
    settings.WEBHOOK_BACKOFF_SECONDS = 0.05
    received, attempts = [], []

    def handler(request):
        attempts.append(1)
        if len(attempts) < 3:
            return Response("busy", status=503)
        try:
            received.append(_verify(request))
        except AssertionError:
            return Response("bad signature", status=401)
        return Response("ok", status=200)

    httpserver.expect_request("/hook", method="POST").respond_with_handler(handler)
    job = run(user, prompt="a red fox")
    wait_until(lambda: received, timeout=30)
    assert len(attempts) == 3 and len(received) == 1
    event = received[0]
    assert event["event"] == "generation.finished"
    assert event["job"]["id"] == str(job.pk) and event["job"]["status"] == "succeeded"
    assert event["job"]["result"]["images"][0]["id"] == Image.objects.get().pk
    assert Job.objects.get(pk=job.pk).result["hook_errors"] == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("answer, expected_attempts", [(401, 1), (503, 3)])
def test_webhook_failure_is_recorded_not_fatal(user, fake_profile, settings,
                                               httpserver: HTTPServer, celery_worker,
                                               answer, expected_attempts):
    """A 401 is not retried; a receiver down for good is tried 1 + WEBHOOK_RETRIES times;
    either way the failure lands in the job's hook_errors and the images stay."""
    settings.WEBHOOK_URL = httpserver.url_for("/hook")
    settings.WEBHOOK_RETRIES = 2
    settings.WEBHOOK_BACKOFF_SECONDS = 0.05
    attempts = []

    def handler(request):
        attempts.append(1)
        return Response("no", status=answer)

    httpserver.expect_request("/hook", method="POST").respond_with_handler(handler)
    job = run(user)
    wait_until(lambda: Job.objects.get(pk=job.pk).result.get("hook_errors"), timeout=30)
    job.refresh_from_db()
    assert len(attempts) == expected_attempts
    assert job.status == Job.Status.SUCCEEDED
    assert job.result["hook_errors"] == [
        {"hook": "hook_webhook", "code": "webhook_failed", "message": f"HTTP {answer}"}]
    assert Image.objects.count() == 1
