"""``/media/`` serves a generated file only to those who may read the image that owns it."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import ImageFactory


def _body(response) -> bytes:
    return b"".join(response.streaming_content)


@pytest.fixture
def private_image(user):
    return ImageFactory(user=user, is_public=False)


@pytest.mark.django_db
def test_owner_reads_private_image_and_thumbnail_with_token(api_client, private_image):
    png = api_client.get(private_image.file.url)
    assert png.status_code == 200 and _body(png)[:8] == b"\x89PNG\r\n\x1a\n"
    thumb = api_client.get(private_image.thumbnail.url)
    assert thumb.status_code == 200 and _body(thumb)[:4] == b"RIFF"


@pytest.mark.django_db
def test_owner_reads_with_session(client, user, private_image):
    client.force_login(user)
    assert client.get(private_image.file.url).status_code == 200


@pytest.mark.django_db
def test_private_image_is_404_for_others_and_anonymous(private_image, other_user, anon_client):
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=other_user).key}")
    for client in (other, anon_client):
        assert client.get(private_image.file.url).status_code == 404
        assert client.get(private_image.thumbnail.url).status_code == 404


@pytest.mark.django_db
def test_public_image_is_readable_by_anyone(user, anon_client):
    image = ImageFactory(user=user, is_public=True)
    assert anon_client.get(image.file.url).status_code == 200
    image.is_public = False
    image.save(update_fields=["is_public"])
    assert anon_client.get(image.file.url).status_code == 404


@pytest.mark.django_db
def test_files_no_row_claims_and_traversal_are_404(api_client, settings, private_image):
    from pathlib import Path

    stray = Path(settings.MEDIA_ROOT) / "images" / "stray.png"
    stray.write_bytes(b"\x89PNG\r\n\x1a\n")
    assert api_client.get("/media/images/stray.png").status_code == 404
    assert api_client.get("/media/../../etc/passwd").status_code == 404
    assert api_client.get("/media/%2e%2e/%2e%2e/etc/passwd").status_code == 404


@pytest.mark.django_db
def test_bad_token_is_treated_as_anonymous(private_image):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert client.get(private_image.file.url).status_code == 404
