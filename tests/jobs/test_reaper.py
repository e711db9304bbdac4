from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Job
from jobs.services import jobs_reap
from jobs.tasks import jobs_reap as reap_task

pytestmark = pytest.mark.django_db


def make(status, *, started_ago=None, created_ago=0):
    job = Job.objects.create(kind="generate", status=status)
    Job.objects.filter(pk=job.pk).update(
        created_at=timezone.now() - timedelta(seconds=created_ago),
        started_at=None if started_ago is None else timezone.now() - timedelta(seconds=started_ago))
    return job


def test_running_jobs_past_the_limit_fail_and_others_are_left(settings):
    settings.JOB_STALE_SECONDS = 600
    dead = make("running", started_ago=3600)
    alive = make("running", started_ago=10)
    queued = make("queued", created_ago=3600)
    done = make("succeeded", started_ago=3600)
    assert reap_task() == 1
    dead.refresh_from_db()
    assert (dead.status, dead.error_code) == ("failed", "worker_lost")
    assert dead.finished_at is not None and "start it again" in dead.error_message
    for job, status in ((alive, "running"), (queued, "queued"), (done, "succeeded")):
        job.refresh_from_db()
        assert job.status == status


def test_embedded_start_fails_everything_left_unfinished():
    jobs = [make("queued"), make("running", started_ago=1), make("paused", started_ago=1)]
    finished = make("canceled")
    assert jobs_reap(older_than_seconds=0, statuses=("queued", "running", "paused"),
                     code="server_restarted") == 3
    assert {Job.objects.get(pk=j.pk).error_code for j in jobs} == {"server_restarted"}
    finished.refresh_from_db()
    assert finished.status == "canceled" and not finished.error_code
