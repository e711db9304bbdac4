import pytest

from images.models import Image
from images.services import generation_create
from jobs.models import Job
from tests.factories import ModelProfileFactory
from tests.support.wait import wait_for_job, wait_until

pytestmark = pytest.mark.django_db


def test_jobs_list_shows_only_my_jobs(api_client, user, other_user, fake_profile,
                                      django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        mine = generation_create(user=user, params={"prompt": "mine"})
        generation_create(user=other_user, params={"prompt": "theirs"})
    data = api_client.get("/api/jobs/").json()
    assert [j["id"] for j in data["results"]] == [str(mine.job_id)]
    one = api_client.get(f"/api/jobs/{mine.job_id}/").json()
    assert one["status"] == "queued" and one["kind"] == "generate"
    assert one["ws_url"] == f"/ws/jobs/{mine.job_id}/"


def test_anonymous_cannot_read_or_cancel(anon_client, user, fake_profile,
                                         django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        gen = generation_create(user=user, params={"prompt": "mine"})
    assert anon_client.get("/api/jobs/").status_code == 401
    assert anon_client.post(f"/api/jobs/{gen.job_id}/cancel/").status_code == 401
    assert Job.objects.get(pk=gen.job_id).status == "queued"


def test_cancel_a_queued_job_then_the_task_does_nothing(api_client, user, fake_profile,
                                                         django_capture_on_commit_callbacks):
    from images.services import generation_run

    with django_capture_on_commit_callbacks(execute=False):
        gen = generation_create(user=user, params={"prompt": "never mind"})
    resp = api_client.post(f"/api/jobs/{gen.job_id}/cancel/")
    assert resp.status_code == 200 and resp.json()["status"] == "canceled"
    job = generation_run(request_id=gen.pk)
    assert job.status == "canceled" and not Image.objects.exists()
    again = api_client.post(f"/api/jobs/{gen.job_id}/cancel/")
    assert again.status_code == 409 and again.json()["code"] == "job_finished"


@pytest.mark.django_db(transaction=True)
def test_cancel_mid_generation_stops_between_steps(api_client, user, celery_worker):
    ModelProfileFactory(slug="slow", provider="fake_slow")
    resp = api_client.post("/api/generate/", {"prompt": "long one", "model": "slow",
                                              "steps": 100}, format="json")
    job_id = resp.json()["job"]
    wait_until(lambda: Job.objects.get(pk=job_id).step >= 2)
    cancel = api_client.post(f"/api/jobs/{job_id}/cancel/")
    assert cancel.status_code == 200 and cancel.json()["cancel_requested"] is True
    job = wait_for_job(job_id, timeout=20)
    assert job.status == "canceled"
    assert 2 <= job.step < 100
    assert not Image.objects.exists()
