"""The request sequences Open WebUI and SillyTavern send to an A1111 backend (written down
from their source in tests/compat/data/*.json, with the file each comes from), replayed
against Atelier: each answer has the status and shape A1111 gives and the client reads."""

import base64
import io
import json
from pathlib import Path

import pytest
from PIL import Image as PILImage
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from jobs.models import Job
from tests.factories import ModelProfileFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)
DATA = Path(__file__).parent / "data"


def _resolve(value, saved):
    if isinstance(value, str) and value.startswith("$"):
        return saved[value[1:]]
    if isinstance(value, dict):
        return {k: _resolve(v, saved) for k, v in value.items()}
    return value


def _pick(data, path: str):
    for part in filter(None, path.split(".")):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


def _check(step, response):
    expect = step["expect"]
    assert response.status_code == expect["status"], (step["why"], response.content[:300])
    body = json.loads(response.content)
    kind = expect.get("type")
    if kind:
        assert {"list": list, "object": dict, "null": type(None)}[kind] is type(body), step
    for key in expect.get("keys", []):
        assert key in body, (step["why"], key)
    if expect.get("item_keys"):
        assert body, step["why"]
        for item in body:
            assert set(expect["item_keys"]) <= set(item), (step["why"], item)
    if "images" in expect:
        assert len(body["images"]) == expect["images"]
        for encoded in body["images"]:  # raw base64 PNG, as Open WebUI's get_image_data reads
            assert PILImage.open(io.BytesIO(base64.b64decode(encoded))).format == "PNG"
    if expect.get("info_json"):
        info = json.loads(body["info"])
        assert {"seed", "all_seeds", "infotexts"} <= set(info)
    if expect.get("idle"):
        assert body["progress"] == 0 and body["state"]["job_count"] == 0
    return body


@pytest.mark.parametrize("name", ["open_webui", "sillytavern"])
def test_client_sequence_answers_as_a1111(name, celery_worker):
    script = json.loads((DATA / f"{name}.json").read_text())
    user = UserFactory(username="alice")
    ModelProfileFactory(slug="fake", name="Fake")
    ModelProfileFactory(slug="second", name="Second", is_default=False)
    client = APIClient()
    secret = base64.b64encode(f"alice:{Token.objects.create(user=user).key}".encode()).decode()
    client.credentials(HTTP_AUTHORIZATION=f"Basic {secret}")
    saved: dict = {}
    for step in script["steps"]:
        payload = _resolve(step.get("json"), saved)
        if step.get("patch"):
            payload = {**payload, **_resolve(step["patch"], saved)}
        if step["method"] == "GET":
            response = client.get(step["path"])
        else:
            response = client.post(step["path"], payload, format="json")
        body = _check(step, response)
        for key, path in (step.get("save") or {}).items():
            saved[key] = _pick(body, path)
    assert Job.objects.filter(user=user, status="succeeded").count() == 1
