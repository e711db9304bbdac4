"""The embedded server (in-memory broker) restarted with unfinished jobs: what the previous
process had queued or was running is queued again at start and finished by the new process —
not failed, not left waiting. A job past JOB_MAX_ATTEMPTS runs fails ``worker_lost``."""

from datetime import timedelta

import pytest
from django.utils import timezone

from images.models import Image
from images.services import generation_create
from jobs.models import Job
from tests.factories import ModelProfileFactory, UserFactory
from tests.support.servers import start_server
from tests.support.wait import wait_until

pytestmark = pytest.mark.django_db(transaction=True)
FINISHED = ("succeeded", "failed", "canceled")


def test_restart_finishes_what_the_previous_process_left(settings):
    user = UserFactory(username="restart")
    ModelProfileFactory(slug="default")
    # as a killed process leaves them: published to a broker that is gone
    queued = generation_create(user=user, params={"prompt": "a kite", "steps": 2})
    running = generation_create(user=user, params={"prompt": "a boat", "steps": 2})
    exhausted = generation_create(user=user, params={"prompt": "a crash", "steps": 2})
    lease = timezone.now() + timedelta(seconds=60)  # not even expired: the process is gone
    Job.objects.filter(pk=running.job_id).update(status="running", attempts=1,
                                                 lease_expires_at=lease, worker="old:1:x")
    Job.objects.filter(pk=exhausted.job_id).update(status="running", attempts=3,
                                                   lease_expires_at=lease, worker="old:1:y")
    ids = [queued.job_id, running.job_id, exhausted.job_id]
    with start_server(media_root=settings.MEDIA_ROOT, embedded=True):
        wait_until(lambda: all(j.status in FINISHED for j in Job.objects.filter(pk__in=ids)),
                   timeout=60)
    jobs = {j.pk: j for j in Job.objects.filter(pk__in=ids)}
    assert jobs[queued.job_id].status == jobs[running.job_id].status == "succeeded"
    assert jobs[running.job_id].attempts == 2
    assert (jobs[exhausted.job_id].status, jobs[exhausted.job_id].error_code) == (
        "failed", "worker_lost")
    assert Image.objects.filter(request__in=[queued, running]).count() == 2
    assert not Image.objects.filter(request=exhausted).exists()
