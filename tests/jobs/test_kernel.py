"""The job kernel: atomic claims, leases, lease-conditional writes, the run protocol's end
states, and the dispatcher's decisions for dead workers (jobs/lease.py, kernel.py,
dispatcher.py). The end-to-end faults (SIGKILL, Redis restart, PostgreSQL stop) are in
tests/reliability/."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from core.exceptions import ApplicationError
from jobs.dispatcher import _reclaim_expired, jobs_dispatch
from jobs.kernel import JobCanceled, JobPaused, JobRequeued, job_run
from jobs.lease import JobLeaseLost, job_claim
from jobs.models import Job
from jobs.services import job_cancel, job_create, job_succeed
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db
UNROUTABLE_TASK = "tests.no_such_task"  # a republished message nobody runs


def _expire(job: Job, *, attempts: int = 1, task: bool = True) -> Job:
    Job.objects.filter(pk=job.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1), attempts=attempts,
        task_name=UNROUTABLE_TASK if task else "", task_args=[str(job.pk)], queue="default")
    job.refresh_from_db()
    return job


def test_only_one_claim_wins_and_it_gets_a_lease(settings):
    job = job_create(kind="test")
    first = job_claim(job_id=job.pk, total_steps=4, message="go")
    second = job_claim(job_id=job.pk)
    assert first is not None and second is None
    assert first.status == "running" and first.attempts == 1 and first.total_steps == 4
    lease = (first.lease_expires_at - timezone.now()).total_seconds()
    assert settings.JOB_LEASE_SECONDS - 5 < lease <= settings.JOB_LEASE_SECONDS
    assert first.worker and first.lease_token == first.worker


def test_a_cancel_requested_while_queued_is_never_claimed():
    job = job_create(kind="test")
    Job.objects.filter(pk=job.pk).update(cancel_requested=True)
    assert job_claim(job_id=job.pk) is None
    assert Job.objects.get(pk=job.pk).status == "canceled"


def test_a_worker_that_lost_its_lease_cannot_write_its_result():
    job = job_claim(job_id=job_create(kind="test").pk)
    _expire(job)
    assert _reclaim_expired(timezone.now()) == {"requeued": 1, "failed": 0, "canceled": 0}
    with pytest.raises(JobLeaseLost):
        job_succeed(job=job, result={"images": [1]})
    fresh = Job.objects.get(pk=job.pk)
    assert fresh.status == "queued" and fresh.result == {} and fresh.worker == ""


@pytest.mark.parametrize("attempts, no_task, expected", [
    (1, False, "queued"),   # attempts left: runs again
    (3, False, "failed"),   # JOB_MAX_ATTEMPTS used up
    (1, True, "failed"),    # nothing recorded to publish again
])
def test_dispatcher_requeues_or_fails_a_job_whose_lease_expired(
        attempts, no_task, expected, django_capture_on_commit_callbacks):
    job = _expire(JobFactory(running=True), attempts=attempts, task=not no_task)
    alive = JobFactory(running=True, lease_expires_at=timezone.now() + timedelta(seconds=30))
    legacy = JobFactory(running=True)  # no lease (an older release): left to the reaper
    with django_capture_on_commit_callbacks(execute=True):
        counts = jobs_dispatch()
    job.refresh_from_db()
    assert job.status == expected
    if expected == "failed":
        assert job.error_code == "worker_lost" and counts["failed"] == 1
    else:
        assert counts["requeued"] == 1 and job.published_at is not None
        assert job.message == "Its worker stopped; queued again."
    for other in (alive, legacy):
        other.refresh_from_db()
        assert other.status == "running"


def test_cancel_of_a_job_whose_worker_is_dead_ends_it_at_once():
    dead = _expire(JobFactory(running=True))
    assert job_cancel(job=dead).status == "canceled"
    alive = JobFactory(running=True, lease_expires_at=timezone.now() + timedelta(seconds=30))
    alive = job_cancel(job=alive)
    assert alive.status == "running" and alive.cancel_requested  # its worker stops it
    paused = JobFactory(paused=True)
    assert job_cancel(job=paused).status == "canceled"


def test_a_dead_job_with_a_cancel_request_is_canceled_by_the_dispatcher():
    job = _expire(JobFactory(running=True))
    Job.objects.filter(pk=job.pk).update(cancel_requested=True)
    assert jobs_dispatch()["canceled"] == 1
    assert Job.objects.get(pk=job.pk).status == "canceled"


def test_embedded_restart_queues_again_what_the_lost_in_memory_broker_held(
        django_capture_on_commit_callbacks):
    running = _expire(JobFactory(running=True))
    Job.objects.filter(pk=running.pk).update(lease_expires_at=timezone.now() + timedelta(
        seconds=60))  # a lease that had not expired yet: the process died anyway
    queued = JobFactory(task_name=UNROUTABLE_TASK, queue="default", task_args=["x"])
    with django_capture_on_commit_callbacks(execute=True):
        counts = jobs_dispatch(after_restart=True)
    assert counts["requeued"] == 1 and counts["republished"] == 2
    assert Job.objects.get(pk=running.pk).status == "queued"
    assert Job.objects.get(pk=queued.pk).published_at is not None


# ------------------------------------------------------------------------- the run protocol
def _run(work, **kwargs) -> Job:
    return job_run(job_id=job_create(kind="test").pk, work=work, **kwargs)


def test_work_result_and_message_end_the_job_succeeded():
    job = _run(lambda run: ({"n": 3}, "three"), total_steps=3)
    assert (job.status, job.result, job.message, job.progress) == ("succeeded", {"n": 3},
                                                                   "three", 1.0)
    assert job.lease_expires_at is None


@pytest.mark.parametrize("exc, status, code", [
    (ApplicationError("bad_input", "nope"), "failed", "bad_input"),
    (ZeroDivisionError("boom"), "failed", "internal_error"),
    (OSError(28, "No space left on device"), "failed", "storage_error"),
    (JobCanceled("stopped", result={"done": 2}), "canceled", ""),
    (JobPaused("Paused", result={"cursor": 7}), "paused", ""),
])
def test_every_outcome_of_the_work_ends_the_job(exc, status, code):
    cleaned = []

    def work(run):
        raise exc

    job = _run(work, on_failure=lambda: cleaned.append(True),
               errors={OSError: lambda e: ("storage_error", str(e))})
    assert job.status == status and job.error_code == code
    if status == "failed":
        assert cleaned == [True] and job.finished_at is not None
    if code == "bad_input":
        assert job.error_message == "nope"
    if isinstance(exc, (JobCanceled, JobPaused)):
        assert job.result == exc.result and cleaned == []


def test_requeued_work_goes_back_to_the_queue_and_is_published_again(
        django_capture_on_commit_callbacks):
    job = job_create(kind="test")
    Job.objects.filter(pk=job.pk).update(task_name=UNROUTABLE_TASK, queue="default",
                                         task_args=["x"])

    def work(run):
        raise JobRequeued("Rate limited; retrying in 5 s.", countdown=5)

    with django_capture_on_commit_callbacks(execute=True):
        done = job_run(job_id=job.pk, work=work)
    fresh = Job.objects.get(pk=job.pk)
    assert done.status == fresh.status == "queued" and fresh.worker == ""
    assert fresh.published_at > timezone.now() + timedelta(seconds=3)  # the countdown


def test_a_gate_keeps_the_job_queued_without_claiming_it():
    job = job_create(kind="test")
    Job.objects.filter(pk=job.pk).update(task_name=UNROUTABLE_TASK, queue="default")
    ran = []
    done = job_run(job_id=job.pk, work=lambda run: ran.append(1) or ({}, ""),
                   gate=lambda j: (2.0, "Waiting for a slot"))
    assert ran == [] and done.status == "queued" and done.message == "Waiting for a slot"
    assert Job.objects.get(pk=job.pk).attempts == 0


def test_a_duplicate_message_for_a_running_or_finished_job_does_nothing():
    ran = []
    for job in (JobFactory(running=True), JobFactory(finished=True), JobFactory(paused=True)):
        before = (job.status, job.seq)
        after = job_run(job_id=job.pk, work=lambda run: ran.append(1) or ({}, ""))
        assert (after.status, after.seq) == before
    assert ran == []


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_renews_the_lease_while_the_work_runs(settings):
    """A real heartbeat thread on its own connection (committed rows): the lease moves
    forward while the work runs longer than a lease."""
    settings.JOB_LEASE_SECONDS = 0.6
    settings.JOB_HEARTBEAT_SECONDS = 0.1
    seen = []

    def work(run):
        for _ in range(8):
            threading.Event().wait(0.15)
            seen.append(Job.objects.get(pk=run.job.pk).lease_expires_at)
        return {}, "ok"

    job = _run(work)
    assert job.status == "succeeded"
    assert seen[-1] > seen[0] and seen[-1] > timezone.now() - timedelta(seconds=0.3)


def test_a_job_whose_task_was_never_published_ends_queue_lost(settings):
    """The web process died between the commit that created the job and the publish: no task
    is recorded, nothing can run it — the dispatcher ends it instead of leaving it queued."""
    settings.JOB_UNPUBLISHED_FAIL_SECONDS = 60
    orphan = job_create(kind="generate")
    fresh = job_create(kind="generate")  # being published right now
    Job.objects.filter(pk=orphan.pk).update(created_at=timezone.now() - timedelta(minutes=2))
    assert jobs_dispatch()["never_published"] == 1
    orphan.refresh_from_db()
    fresh.refresh_from_db()
    assert (orphan.status, orphan.error_code) == ("failed", "queue_lost")
    assert fresh.status == "queued"
    # at an embedded restart nothing is being published: every such job ends at once
    assert jobs_dispatch(after_restart=True)["never_published"] == 1
    assert Job.objects.get(pk=fresh.pk).error_code == "queue_lost"


@pytest.mark.django_db(transaction=True)
def test_a_database_lost_mid_run_leaves_the_job_to_the_dispatcher():
    """A PostgreSQL restart under a running job: the work sees OperationalError. The job is
    not failed (the failure could not be written anyway, and the work can run again): it
    stays running until its lease runs out, then the dispatcher queues it again."""
    from django.db import OperationalError

    cleaned = []
    job = job_create(kind="test")
    Job.objects.filter(pk=job.pk).update(task_name=UNROUTABLE_TASK, queue="default",
                                         task_args=["x"])

    def work(run):
        raise OperationalError("server closed the connection unexpectedly")

    job_run(job_id=job.pk, work=work, on_failure=lambda: cleaned.append(1))
    stuck = Job.objects.get(pk=job.pk)
    assert stuck.status == "running" and stuck.error_code == "" and cleaned == [1]
    _expire(stuck)
    assert jobs_dispatch()["requeued"] == 1
    assert Job.objects.get(pk=job.pk).status == "queued"
