"""Narration: POST /api/images/<pk>/narrate/ queues a job whose worker runs espeak-ng and
stores a real WAV on the image; without the engine the API answers 503 tts_unavailable."""

import io
import wave

import pytest

from images.models import Image
from images.narration import EspeakEngine, narration_text
from jobs.models import Job
from tests.factories import ImageFactory
from tests.support.wait import wait_for_job


def wav_duration(data: bytes) -> float:
    with wave.open(io.BytesIO(data)) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        return w.getnframes() / w.getframerate()


def test_espeak_engine_makes_a_real_wav():
    data, ext = EspeakEngine().synthesize("A lighthouse on a stormy coast.")
    assert ext == "wav" and data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert 0.8 < wav_duration(data) < 10


@pytest.mark.django_db
def test_narration_text_prefers_caption_then_prompt_without_lora_tags(user):
    image = ImageFactory.build(user=user, prompt="a cat <lora:ink:0.5>, night", caption="")
    assert narration_text(image) == "a cat, night"
    image.caption = "A black cat at night."
    assert narration_text(image) == "A black cat at night."


@pytest.mark.django_db(transaction=True)
def test_narrate_through_a_real_worker(api_client, user, celery_worker):
    image = ImageFactory(user=user, caption="A red fox walks through fresh snow.")
    resp = api_client.post(f"/api/images/{image.pk}/narrate/")
    assert resp.status_code == 202, resp.content
    assert resp.json()["snapshot"]["kind"] == "narrate" and resp.json()["status"] == "queued"
    job = wait_for_job(resp.json()["id"], timeout=60)
    assert job.status == Job.Status.SUCCEEDED, (job.error_code, job.error_message)
    image.refresh_from_db()
    assert image.audio.name.endswith(".wav")
    assert job.result["audio_url"] == image.audio.url
    with image.audio.open("rb") as fh:
        assert wav_duration(fh.read()) > 1.0
    detail = api_client.get(f"/api/images/{image.pk}/").json()
    assert detail["audio_url"] == image.audio.url
    audio = api_client.get(f"/api/images/{image.pk}/file/?variant=audio")
    assert audio.status_code == 200 and audio["Content-Type"] == "audio/x-wav"
    assert b"".join(audio.streaming_content)[:4] == b"RIFF"


@pytest.mark.django_db
def test_no_engine_is_503_and_no_job(api_client, user, settings):
    settings.NARRATION_ESPEAK_PATH = "/nonexistent/espeak-ng"
    image = ImageFactory(user=user)
    resp = api_client.post(f"/api/images/{image.pk}/narrate/")
    assert resp.status_code == 503 and resp.json()["code"] == "tts_unavailable"
    assert not Job.objects.filter(kind="narrate").exists()
    assert not Image.objects.get(pk=image.pk).audio


@pytest.mark.django_db
def test_only_the_owner_narrates(api_client, anon_client, other_user):
    public = ImageFactory(user=other_user, is_public=True)
    private = ImageFactory(user=other_user)
    assert api_client.post(f"/api/images/{public.pk}/narrate/").status_code == 403
    assert api_client.post(f"/api/images/{private.pk}/narrate/").status_code == 404
    assert anon_client.post(f"/api/images/{public.pk}/narrate/").status_code == 401
