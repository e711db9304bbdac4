import time

from jobs.models import Job


def wait_for_job(job_id, *, timeout: float = 60.0) -> Job:
    """Poll the database until the job is finished; return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if job.is_finished:
            return job
        time.sleep(0.05)
    raise TimeoutError(f"job {job_id} still {Job.objects.get(pk=job_id).status} after {timeout}s")


def wait_until(predicate, *, timeout: float = 30.0, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError("condition not met")
