"""A1111 syntax that is not attention (composable AND, prompt editing, alternation) is a 400
naming the part, before anything is queued; the same words in lower case are plain text."""

import pytest

from images.models import GenerationRequest
from jobs.models import Job

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("prompt, negative, part", [
    ("a cat AND a dog", "", "AND"),
    ("a [cat:dog:0.5] on a mat", "", "[cat:dog:0.5]"),
    ("a [cat|dog]", "", "[cat|dog]"),
    ("a [red:1.2] cat", "", "[red:1.2]"),
    ("a cat", "blurry [x:y:3]", "[x:y:3]"),
])
def test_unsupported_syntax_is_400_and_nothing_is_queued(api_client, fake_profile, prompt,
                                                         negative, part):
    jobs = Job.objects.count()
    resp = api_client.post("/api/generate/", {"prompt": prompt, "negative_prompt": negative,
                                              "width": 64, "height": 64, "steps": 2},
                           format="json")
    assert resp.status_code == 400, resp.content
    body = resp.json()
    assert body["code"] == "invalid"
    field = "negative_prompt" if negative else "prompt"
    assert field in body["fields"]
    assert part.split(":")[0].strip("[") in body["message"] or part in body["message"]
    assert Job.objects.count() == jobs and not GenerationRequest.objects.exists()


def test_and_in_the_negative_prompt_and_lower_case_and_are_text(api_client, fake_profile):
    resp = api_client.post("/api/generate/", {"prompt": "salt and pepper", "width": 64,
                                              "height": 64, "steps": 2,
                                              "negative_prompt": "blurry AND dark"},
                           format="json")
    assert resp.status_code == 202, resp.content
