"""REST job snapshots hide the server's layout from users who are not staff, as the WebSocket
does: an absolute path in a job's error or message keeps only its file name."""

import pytest
from rest_framework.test import APIClient

from jobs.services import job_create, job_fail
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
SECRET_PATH = "/srv/atelier/var/models/sd15/unet/model.safetensors"


@pytest.mark.parametrize("staff", [False, True])
def test_job_error_paths_are_redacted_for_non_staff(staff):
    user = UserFactory(username="owner", is_staff=staff)
    job = job_create(kind="generate", user=user)
    job_fail(job=job, code="internal_error", message=f"OSError: {SECRET_PATH}: bad header")
    client = APIClient()
    client.force_authenticate(user)
    for body in (client.get(f"/api/jobs/{job.pk}/").json(),
                 client.get("/api/jobs/").json()["results"][0]):
        message = body["error"]["message"]
        if staff:
            assert SECRET_PATH in message
        else:
            assert message == "OSError: model.safetensors: bad header"
