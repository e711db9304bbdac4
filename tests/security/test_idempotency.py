"""``Idempotency-Key`` on ``POST /api/generate/``: a repeated key returns the first request's
answer (same job, nothing new queued), also under a race; another body under the same key is
409; keys are per user."""

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from images.models import GenerationRequest
from jobs.models import Job
from tests.factories import ModelProfileFactory, UserFactory


def _client(user):
    from rest_framework.authtoken.models import Token

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def post(client, key, **body):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post("/api/generate/", {"prompt": "a kite", **body}, format="json", **headers)


@pytest.mark.django_db
def test_repeated_key_returns_the_first_job(api_client, fake_profile):
    first = post(api_client, "k-1", steps=3)
    again = post(api_client, "k-1", steps=3)
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert GenerationRequest.objects.count() == 1 and Job.objects.count() == 1
    # Without a key, or with another key, each request is new.
    assert post(api_client, None, steps=3).json()["id"] != first.json()["id"]
    assert post(api_client, "k-2", steps=3).json()["id"] != first.json()["id"]
    assert GenerationRequest.objects.count() == 3


@pytest.mark.django_db
@pytest.mark.parametrize("change", [{"prompt": "a boat"}, {"steps": 5}, {"width": 128},
                                    {"seed": 42}, {"n": 2}])
def test_same_key_with_another_body_is_409(api_client, fake_profile, change):
    assert post(api_client, "k", steps=3, seed=7).status_code == 202
    r = post(api_client, "k", **{"steps": 3, "seed": 7, **change})
    assert r.status_code == 409, r.content
    assert r.json()["code"] == "idempotency_key_reused" and r.json()["message"]
    assert GenerationRequest.objects.count() == 1


@pytest.mark.django_db
def test_keys_are_per_user(api_client, fake_profile, other_user):
    mine = post(api_client, "shared", steps=3).json()
    theirs = post(_client(other_user), "shared", steps=3)
    assert theirs.status_code == 202 and theirs.json()["job"] != mine["job"]


@pytest.mark.django_db
def test_overlong_key_is_400(api_client, fake_profile):
    r = post(api_client, "x" * 256)
    assert r.status_code == 400 and r.json()["code"] == "invalid"
    assert not GenerationRequest.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_make_one_job():
    """Eight threads send the same key at once: the unique constraint picks one request and
    every answer names its job."""
    ModelProfileFactory()
    user = UserFactory(username="alice")
    client_token = _client(user)._credentials["HTTP_AUTHORIZATION"]
    # A worker-less broker would keep the published tasks: do not publish.
    from unittest import mock

    barrier = threading.Barrier(8)
    answers = []

    def send():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=client_token)
        barrier.wait()
        try:
            answers.append(post(client, "race", steps=3))
        finally:
            connection.close()

    with mock.patch("images.tasks.generation_run.apply_async"):
        threads = [threading.Thread(target=send) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert [a.status_code for a in answers] == [202] * 8, [a.content for a in answers]
    assert len({a.json()["job"] for a in answers}) == 1
    assert GenerationRequest.objects.filter(idempotency_key="race").count() == 1
    assert Job.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("code", ["broker_unavailable", "worker_lost"])
def test_retry_after_a_failure_runs_again(api_client, fake_profile, code):
    """A client retrying with the same key after its job failed (a 503 when the broker was
    down, a worker lost) gets a new job that runs — not the failed one again."""
    from jobs.services import job_fail

    first = post(api_client, "retry-me", steps=3)
    job_fail(job=Job.objects.get(pk=first.json()["job"]), code=code, message="gone")
    retry = post(api_client, "retry-me", steps=3)
    assert retry.status_code == 202
    assert retry.json()["job"] != first.json()["job"] and retry.json()["status"] == "queued"
    # ... and that new job is now what the key answers
    assert post(api_client, "retry-me", steps=3).json()["job"] == retry.json()["job"]
    old = GenerationRequest.objects.get(pk=first.json()["id"])
    assert old.job.error_code == code and old.idempotency_key == ""
    # a canceled job is the user's decision, not a failure: the key keeps answering it
    canceled = post(api_client, "cancel-me", steps=3)
    api_client.post(f"/api/jobs/{canceled.json()['job']}/cancel/")
    assert post(api_client, "cancel-me", steps=3).json()["job"] == canceled.json()["job"]
