"""The gallery's bulk API (issue 15): ``POST /api/images/bulk/`` (delete, move, publish,
unpublish, favourite) and ``POST /api/images/zip/`` (a streamed ZIP of your PNGs), their
permissions (others' ids are 404 and change nothing), bounds and error bodies; and the list
orderings the gallery's sort uses."""

from __future__ import annotations

import io
import os
import zipfile

import pytest

from images.models import Image, Project
from images.services.bulk import BULK_MAX
from tests.factories import ImageFactory

pytestmark = pytest.mark.django_db

BULK = "/api/images/bulk/"
ZIP = "/api/images/zip/"


def _error(resp, status, code):
    assert resp.status_code == status, resp.content
    body = resp.json()
    assert body["code"] == code and body["message"], body
    return body


def test_publish_unpublish_favorite_only_the_named_images(api_client, user):
    a, b, c = (ImageFactory(user=user) for _ in range(3))
    resp = api_client.post(BULK, {"action": "publish", "ids": [a.pk, b.pk, a.pk]}, format="json")
    assert resp.status_code == 200
    assert resp.json() == {"action": "publish", "count": 2, "ids": [a.pk, b.pk]}
    assert set(Image.objects.filter(is_public=True).values_list("pk", flat=True)) == {a.pk, b.pk}

    assert api_client.post(BULK, {"action": "unpublish", "ids": [b.pk]},
                           format="json").status_code == 200
    assert list(Image.objects.filter(is_public=True).values_list("pk", flat=True)) == [a.pk]

    assert api_client.post(BULK, {"action": "favorite", "ids": [c.pk]},
                           format="json").json()["count"] == 1
    assert list(Image.objects.filter(is_favorite=True).values_list("pk", flat=True)) == [c.pk]
    assert api_client.post(BULK, {"action": "unfavorite", "ids": [c.pk]},
                           format="json").status_code == 200
    assert not Image.objects.filter(is_favorite=True).exists()


def test_move_to_own_project_and_out_of_it(api_client, user, other_user):
    mine = Project.objects.create(owner=user, name="Coast")
    theirs = Project.objects.create(owner=other_user, name="Theirs")
    a, b = ImageFactory(user=user), ImageFactory(user=user)

    resp = api_client.post(BULK, {"action": "move", "ids": [a.pk, b.pk], "project": mine.pk},
                           format="json")
    assert resp.status_code == 200 and resp.json()["count"] == 2
    assert set(mine.images.values_list("pk", flat=True)) == {a.pk, b.pk}
    listed = api_client.get(f"/api/images/?project={mine.pk}").json()
    assert {r["id"] for r in listed["results"]} == {a.pk, b.pk}

    # Someone else's project: 404, nothing moved.
    _error(api_client.post(BULK, {"action": "move", "ids": [a.pk], "project": theirs.pk},
                           format="json"), 404, "not_found")
    assert Image.objects.get(pk=a.pk).project_id == mine.pk
    assert not theirs.images.exists()

    # null: out of any project.
    assert api_client.post(BULK, {"action": "move", "ids": [a.pk], "project": None},
                           format="json").status_code == 200
    assert Image.objects.get(pk=a.pk).project_id is None
    assert Image.objects.get(pk=b.pk).project_id == mine.pk

    # move without naming a project is refused, per field.
    body = _error(api_client.post(BULK, {"action": "move", "ids": [a.pk]}, format="json"),
                  400, "invalid")
    assert "project" in body["fields"]


def test_delete_removes_rows_and_files_through_the_delete_service(
        api_client, user, django_capture_on_commit_callbacks):
    images = [ImageFactory(user=user) for _ in range(3)]
    keep = ImageFactory(user=user)
    paths = [p for img in images[:2] for p in (img.file.path, img.thumbnail.path)]
    assert all(os.path.exists(p) for p in paths)
    with django_capture_on_commit_callbacks(execute=True):
        resp = api_client.post(BULK, {"action": "delete", "ids": [images[0].pk, images[1].pk]},
                               format="json")
    assert resp.status_code == 200 and resp.json()["count"] == 2
    assert set(Image.objects.values_list("pk", flat=True)) == {images[2].pk, keep.pk}
    assert not any(os.path.exists(p) for p in paths)
    assert os.path.exists(keep.file.path)


def test_others_ids_are_404_and_change_nothing(api_client, user, other_user,
                                               django_capture_on_commit_callbacks):
    mine = ImageFactory(user=user)
    theirs = ImageFactory(user=other_user, is_public=True)
    for action in ("delete", "publish", "favorite"):
        with django_capture_on_commit_callbacks(execute=True):
            resp = api_client.post(BULK, {"action": action, "ids": [mine.pk, theirs.pk]},
                                   format="json")
        body = _error(resp, 404, "not_found")
        assert str(theirs.pk) in body["message"]
    assert Image.objects.filter(pk__in=[mine.pk, theirs.pk]).count() == 2
    assert not Image.objects.get(pk=mine.pk).is_public
    assert not Image.objects.get(pk=theirs.pk).is_favorite
    assert os.path.exists(theirs.file.path) and os.path.exists(mine.file.path)
    # An id of no image at all reads the same.
    _error(api_client.post(BULK, {"action": "publish", "ids": [mine.pk, 10**9]},
                           format="json"), 404, "not_found")
    # The ZIP too: others' public images are not downloadable in bulk.
    _error(api_client.post(ZIP, {"ids": [theirs.pk]}, format="json"), 404, "not_found")


@pytest.mark.parametrize("body, field", [
    ({"action": "explode", "ids": [1]}, "action"),
    ({"action": "delete", "ids": []}, "ids"),
    ({"action": "delete"}, "ids"),
    ({"action": "delete", "ids": ["x"]}, "ids"),
    ({"action": "delete", "ids": [0]}, "ids"),
    ({"action": "delete", "ids": "1,2"}, "ids"),
    ({"action": "move", "ids": [1], "project": "abc"}, "project"),
    ({"ids": [1]}, "action"),
])
def test_bad_input_is_400_with_code_message_and_field(api_client, user, body, field):
    resp = api_client.post(BULK, body, format="json")
    data = _error(resp, 400, "invalid")
    assert field in data["fields"], data


def test_over_the_cap_is_400_too_many(api_client, user):
    ids = list(range(1, BULK_MAX + 2))
    body = _error(api_client.post(BULK, {"action": "publish", "ids": ids}, format="json"),
                  400, "too_many")
    assert str(BULK_MAX) in body["message"] and "ids" in body["fields"]
    _error(api_client.post(ZIP, {"ids": ids}, format="json"), 400, "too_many")


def test_anonymous_is_refused(anon_client, user):
    img = ImageFactory(user=user)
    for url, body in ((BULK, {"action": "delete", "ids": [img.pk]}), (ZIP, {"ids": [img.pk]})):
        resp = anon_client.post(url, body, format="json")
        assert resp.status_code in (401, 403) and resp.json()["code"]
    assert Image.objects.filter(pk=img.pk).exists()


def _zip_of(resp) -> zipfile.ZipFile:
    assert resp.status_code == 200, resp.content
    assert resp["Content-Type"] == "application/zip"
    assert resp["Content-Disposition"].startswith('attachment; filename="atelier-images-')
    data = b"".join(resp.streaming_content)
    return zipfile.ZipFile(io.BytesIO(data))


def test_zip_holds_the_png_files_byte_for_byte(api_client, user):
    a = ImageFactory(user=user, prompt="<lora:ink:0.7> A red fox, snow!")
    b = ImageFactory(user=user, prompt="")
    resp = api_client.post(ZIP, {"ids": [b.pk, a.pk]}, format="json")
    assert resp.streaming and resp["X-Image-Count"] == "2"
    zf = _zip_of(resp)
    assert zf.testzip() is None
    names = zf.namelist()
    assert names == [f"{b.pk}-image.png", f"{a.pk}-a-red-fox-snow.png"]
    for name, img in zip(names, (b, a), strict=True):
        with open(img.file.path, "rb") as fh:
            assert zf.read(name) == fh.read()
        assert zf.getinfo(name).compress_type == zipfile.ZIP_STORED


def test_zip_from_a_plain_form_post_and_a_missing_file(api_client, user):
    a, b = ImageFactory(user=user), ImageFactory(user=user)
    os.remove(b.file.path)
    # An HTML form sends ids repeated (application/x-www-form-urlencoded).
    resp = api_client.post(ZIP, f"ids={a.pk}&ids={b.pk}",
                           content_type="application/x-www-form-urlencoded")
    zf = _zip_of(resp)
    assert zf.namelist() == [f"{a.pk}-a-lighthouse-at-night-stormy-sea.png", "MISSING.txt"]
    assert f"{b.pk}-" in zf.read("MISSING.txt").decode()


def test_zip_of_many_images_streams_in_chunks(api_client, user, settings):
    from PIL import Image as PILImage

    # Incompressible pixels, so each PNG is about 200 KB and the archive several chunks.
    imgs = []
    for _ in range(12):
        img = ImageFactory(user=user)
        PILImage.frombytes("RGB", (256, 256), os.urandom(256 * 256 * 3)).save(img.file.path)
        imgs.append(img)
    resp = api_client.post(ZIP, {"ids": [i.pk for i in imgs]}, format="json")
    chunks = list(resp.streaming_content)
    assert len(chunks) > len(imgs)  # not one blob built in memory first
    zf = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert zf.testzip() is None and len(zf.namelist()) == 12
    total = sum(os.path.getsize(i.file.path) for i in imgs)
    assert sum(zi.file_size for zi in zf.infolist()) == total


def test_list_orderings_of_the_gallery_sort(api_client, user):
    a = ImageFactory(user=user, model_name="Zeta", seed=3)
    b = ImageFactory(user=user, model_name="alpha", seed=1, is_favorite=True)
    c = ImageFactory(user=user, model_name="Mid", seed=2)

    def order(ordering):
        resp = api_client.get(f"/api/images/?ordering={ordering}")
        assert resp.status_code == 200, resp.content
        return [r["id"] for r in resp.json()["results"]]

    assert order("-created_at,-id") == [c.pk, b.pk, a.pk]
    assert order("created_at,id") == [a.pk, b.pk, c.pk]
    assert order("-is_favorite,-created_at,-id") == [b.pk, c.pk, a.pk]
    assert order("seed") == [b.pk, c.pk, a.pk]
    names = order("model_name,-id")
    assert names[0] in (b.pk, c.pk)  # collation of case differs between SQLite and PostgreSQL
    _error(api_client.get("/api/images/?ordering=prompt"), 400, "invalid")


def test_search_favourite_and_date_filters_used_by_the_gallery(api_client, user):
    fox = ImageFactory(user=user, prompt="a red fox in the snow", is_favorite=True)
    ImageFactory(user=user, prompt="a lighthouse")
    got = api_client.get("/api/images/?q=FOX").json()["results"]
    assert [r["id"] for r in got] == [fox.pk]
    got = api_client.get("/api/images/?favorite=true").json()["results"]
    assert [r["id"] for r in got] == [fox.pk]
    day = fox.created_at.date().isoformat()
    assert api_client.get(f"/api/images/?created_after={day}&created_before={day}"
                          ).json()["count"] == 2
    assert api_client.get("/api/images/?created_before=2000-01-01").json()["count"] == 0


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_zip_under_asgi_is_an_async_stream_read_chunk_by_chunk(settings):
    """Through Django's ASGI request path the ZIP is an async iterator (Django's ASGI handler
    would read a synchronous one to its end first); the archive is the same."""
    from asgiref.sync import sync_to_async
    from django.test import AsyncClient
    from PIL import Image as PILImage
    from rest_framework.authtoken.models import Token

    from tests.factories import UserFactory

    def rows():
        owner = UserFactory(username="asgi-owner")
        made = []
        for _ in range(4):
            img = ImageFactory(user=owner)
            PILImage.frombytes("RGB", (256, 256), os.urandom(256 * 256 * 3)).save(img.file.path)
            made.append(img)
        return Token.objects.get_or_create(user=owner)[0].key, made

    key, imgs = await sync_to_async(rows)()
    resp = await AsyncClient().post(ZIP, {"ids": [i.pk for i in imgs]},
                                    content_type="application/json",
                                    headers={"authorization": f"Token {key}"})
    assert resp.status_code == 200 and resp.is_async
    chunks = [chunk async for chunk in resp.streaming_content]
    assert len(chunks) > len(imgs)
    zf = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert zf.testzip() is None
    assert [int(n.split("-")[0]) for n in zf.namelist()] == [i.pk for i in imgs]
    # The thread sync_to_async ran the ORM in keeps a connection; let the test DB be dropped.
    from django.db import connections

    await sync_to_async(connections.close_all)()
