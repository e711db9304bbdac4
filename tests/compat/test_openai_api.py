"""The OpenAI Images API (/v1/) in-process, on the fake provider with a real Celery worker:
Bearer auth, both response formats, edits with OpenAI's transparent-mask rule, models, error
shapes. The real ``openai`` SDK against a real server: test_clients.py."""

import base64
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image as PILImage
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from images.models import GenerationRequest
from jobs.models import Job
from tests.factories import ModelProfileFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client(db):
    ModelProfileFactory(slug="fake", name="Fake")
    user = UserFactory(username="alice")
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.create(user=user).key}")
    return c


def _png(size=(32, 32), mode="RGB", color=(20, 40, 60)) -> bytes:
    buf = io.BytesIO()
    PILImage.new(mode, size, color).save(buf, format="PNG")
    return buf.getvalue()


def test_no_or_bad_key_is_401_in_openai_shape(client):
    for header in (None, "Bearer nope"):
        c = APIClient()
        if header:
            c.credentials(HTTP_AUTHORIZATION=header)
        response = c.post("/v1/images/generations", {"prompt": "x"}, format="json")
        assert response.status_code == 401
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["code"] == "invalid_api_key"
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_generations_b64_json_and_url(client, celery_worker):
    response = client.post("/v1/images/generations", {
        "prompt": "a kite", "n": 2, "size": "64x32", "response_format": "b64_json",
        "quality": "hd", "style": "vivid", "user": "someone"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert isinstance(body["created"], int) and len(body["data"]) == 2
    image = PILImage.open(io.BytesIO(base64.b64decode(body["data"][0]["b64_json"])))
    assert image.size == (64, 32)

    response = client.post("/v1/images/generations", {"prompt": "a kite", "model": "fake"},
                           format="json")
    url = response.json()["data"][0]["url"]
    assert url.startswith("http://testserver/v1/images/files/")
    anonymous = APIClient().get(url.removeprefix("http://testserver"))  # no credentials needed
    assert anonymous.status_code == 200 and anonymous["Content-Type"] == "image/png"
    tampered = APIClient().get(url.removeprefix("http://testserver")[:-3] + "abc")
    assert tampered.status_code == 404


@pytest.mark.parametrize("body, param", [
    ({"prompt": "x", "size": "4096x4096"}, "width"),
    ({"prompt": "x", "size": "big"}, "size"),
    ({"prompt": "x", "model": "dall-e-3"}, "model"),
    ({"prompt": "x", "response_format": "jpeg"}, "response_format"),
    ({"prompt": "x", "n": 50}, "n"),
])
def test_bad_generation_input_is_400_in_openai_shape(client, body, param):
    response = client.post("/v1/images/generations", body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param, error
    assert Job.objects.count() == 0


def test_edit_with_a_transparent_mask_inpaints(client, celery_worker):
    mask = PILImage.new("RGBA", (32, 32), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, 16, 32))  # left half transparent: edit there
    buf = io.BytesIO()
    mask.save(buf, format="PNG")
    response = client.post("/v1/images/edits", {
        "image": SimpleUploadedFile("in.png", _png()), "mask": SimpleUploadedFile(
            "mask.png", buf.getvalue()), "prompt": "a kite", "response_format": "b64_json"},
        format="multipart")
    assert response.status_code == 200, response.content
    gen = GenerationRequest.objects.get()
    assert gen.kind == "inpaint"
    with gen.mask.open("rb") as fh:
        native_mask = PILImage.open(fh).convert("L")
        assert native_mask.getpixel((2, 2)) == 255 and native_mask.getpixel((30, 2)) == 0


def test_edit_of_an_opaque_image_without_mask_is_img2img(client, celery_worker):
    response = client.post("/v1/images/edits", {
        "image[]": SimpleUploadedFile("in.png", _png()), "prompt": "a kite"}, format="multipart")
    assert response.status_code == 200, response.content
    assert GenerationRequest.objects.get().kind == "img2img"


@pytest.mark.parametrize("files", [
    {"image": SimpleUploadedFile("x.png", b"not an image at all")},
    {"image": SimpleUploadedFile("x.png", _png()),
     "mask": SimpleUploadedFile("m.png", _png())},  # a mask without alpha
])
def test_bad_edit_input_is_400_and_queues_nothing(client, files):
    response = client.post("/v1/images/edits", {**files, "prompt": "x"}, format="multipart")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["param"] in ("image", "mask")
    assert Job.objects.count() == 0


def test_models(client):
    body = client.get("/v1/models").json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["fake"]
