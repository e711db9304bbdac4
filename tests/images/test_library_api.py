"""The images library API: own images (filters, patch, delete with files), gallery, user
images, projects and their galleries, tags with counts, prompt helper versions, themes."""

import os
from datetime import timedelta

import pytest
from django.utils import timezone

from images.models import Image, Project, PromptHelper, Tag
from tests.factories import ImageFactory

pytestmark = pytest.mark.django_db


def ids(resp):
    assert resp.status_code == 200, resp.content
    return sorted(x["id"] for x in resp.json()["results"])


def test_own_images_list_and_filters(api_client, user, other_user):
    project = Project.objects.create(owner=user, name="Sea")
    a = ImageFactory(user=user, project=project, model_name="SDXL Base", provider="fake",
                     loras=[{"lora_id": 7, "name": "ink", "weight": 0.8}], is_favorite=True)
    b = ImageFactory(user=user, prompt="a red fox in snow", model_name="Flux")
    old = ImageFactory(user=user)
    Image.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))
    ImageFactory(user=other_user, is_public=True)  # never in my list
    tag = Tag.objects.create(name="night sky", slug="night-sky")
    b.tags.add(tag)

    assert ids(api_client.get("/api/images/")) == sorted([a.pk, b.pk, old.pk])
    assert ids(api_client.get(f"/api/images/?project={project.pk}")) == [a.pk]
    assert ids(api_client.get("/api/images/?tag=night-sky")) == [b.pk]
    assert ids(api_client.get("/api/images/?tag=Night Sky")) == [b.pk]
    assert ids(api_client.get("/api/images/?model=sdxl base")) == [a.pk]
    assert ids(api_client.get("/api/images/?lora=ink")) == [a.pk]
    assert ids(api_client.get("/api/images/?lora=7")) == [a.pk]
    assert ids(api_client.get("/api/images/?lora=inkwash")) == []
    assert ids(api_client.get("/api/images/?favorite=true")) == [a.pk]
    assert ids(api_client.get("/api/images/?q=fox")) == [b.pk]
    since = (timezone.now() - timedelta(days=2)).date().isoformat()
    assert ids(api_client.get(f"/api/images/?created_after={since}")) == sorted([a.pk, b.pk])
    assert ids(api_client.get(f"/api/images/?created_before={since}")) == [old.pk]
    first = api_client.get("/api/images/").json()["results"][0]
    assert first["owner"] == "alice" and first["is_owner"] is True
    assert first["detail_url"] == f"/images/{first['id']}/"
    assert first["url"].startswith("/media/images/")


def test_patch_image_metadata_tags_and_project(api_client, user, other_user):
    image = ImageFactory(user=user)
    project = Project.objects.create(owner=user, name="P")
    resp = api_client.patch(f"/api/images/{image.pk}/", {
        "title": "Lighthouse", "caption": "A lighthouse in a storm.", "alt_text": "lighthouse",
        "tags": ["Storm", "sea ", "storm"], "project": project.pk, "is_public": True,
        "is_favorite": True, "nsfw_level": 1}, format="json")
    assert resp.status_code == 200, resp.content
    data = resp.json()
    assert data["title"] == "Lighthouse" and data["tags"] == ["sea", "storm"]
    assert data["project"] == project.pk and data["is_public"] and data["is_favorite"]
    image.refresh_from_db()
    assert image.caption == "A lighthouse in a storm." and image.nsfw_level == 1
    # tags replace the set
    resp = api_client.patch(f"/api/images/{image.pk}/", {"tags": ["calm"]}, format="json")
    assert resp.json()["tags"] == ["calm"]
    # a project of someone else is refused
    foreign = Project.objects.create(owner=other_user, name="theirs")
    resp = api_client.patch(f"/api/images/{image.pk}/", {"project": foreign.pk}, format="json")
    assert resp.status_code == 400 and resp.json()["fields"]["project"]
    resp = api_client.patch(f"/api/images/{image.pk}/", {"nsfw_level": 9}, format="json")
    assert resp.status_code == 400 and "nsfw_level" in resp.json()["fields"]


def test_delete_removes_row_and_files(api_client, user, django_capture_on_commit_callbacks):
    image = ImageFactory(user=user)
    paths = [image.file.path, image.thumbnail.path]
    assert all(os.path.exists(p) for p in paths)
    with django_capture_on_commit_callbacks(execute=True):
        resp = api_client.delete(f"/api/images/{image.pk}/")
    assert resp.status_code == 204
    assert not Image.objects.filter(pk=image.pk).exists()
    assert not any(os.path.exists(p) for p in paths)


def test_gallery_and_user_images(api_client, anon_client, user, other_user):
    mine_public = ImageFactory(user=user, is_public=True)
    mine_private = ImageFactory(user=user)
    theirs_public = ImageFactory(user=other_user, is_public=True)
    ImageFactory(user=other_user)
    assert ids(anon_client.get("/api/gallery/")) == sorted([mine_public.pk, theirs_public.pk])
    assert ids(anon_client.get("/api/gallery/?user=mallory")) == [theirs_public.pk]
    assert ids(api_client.get("/api/user-images/?user=mallory")) == [theirs_public.pk]
    assert ids(api_client.get("/api/user-images/?user=alice")) == sorted(
        [mine_public.pk, mine_private.pk])
    assert ids(anon_client.get("/api/user-images/?user=alice")) == [mine_public.pk]
    assert ids(api_client.get("/api/user-images/")) == sorted([mine_public.pk, mine_private.pk])


def test_projects_crud_cover_and_gallery(api_client, anon_client, user, other_user):
    cover = ImageFactory(user=user, is_public=True)
    resp = api_client.post("/api/image-projects/", {"name": "Coast", "description": "sea",
                                                    "cover": cover.pk, "is_public": True},
                           format="json")
    assert resp.status_code == 201, resp.content
    project = resp.json()
    assert project["owner"] == "alice" and project["cover"] == cover.pk
    assert project["cover_thumbnail_url"].startswith("/media/thumbnails/")
    private = ImageFactory(user=user, project_id=project["id"])
    cover.project_id = project["id"]
    cover.save()
    listing = api_client.get("/api/image-projects/").json()["results"]
    assert listing[0]["image_count"] == 2
    assert ids(api_client.get(f"/api/projects/{project['id']}/gallery/")) == sorted(
        [cover.pk, private.pk])
    # others see only the public images of a public project
    assert ids(anon_client.get(f"/api/projects/{project['id']}/gallery/")) == [cover.pk]
    resp = api_client.patch(f"/api/image-projects/{project['id']}/", {"name": "Coastline"},
                            format="json")
    assert resp.status_code == 200 and resp.json()["name"] == "Coastline"
    foreign = ImageFactory(user=other_user, is_public=True)
    resp = api_client.patch(f"/api/image-projects/{project['id']}/", {"cover": foreign.pk},
                            format="json")
    assert resp.status_code == 400 and "cover" in resp.json()["fields"]
    assert api_client.delete(f"/api/image-projects/{project['id']}/").status_code == 204
    private.refresh_from_db()
    assert private.project_id is None  # images stay


def test_tags_with_counts(api_client, anon_client, user, other_user):
    sea, fox = Tag.objects.create(name="sea", slug="sea"), Tag.objects.create(name="fox",
                                                                              slug="fox")
    for img in (ImageFactory(user=user), ImageFactory(user=user, is_public=True)):
        img.tags.add(sea)
    ImageFactory(user=other_user).tags.add(fox)  # private: counted for nobody but mallory
    ImageFactory(user=other_user, is_public=True).tags.add(sea)
    mine = {t["name"]: t["count"] for t in api_client.get("/api/tags/").json()["results"]}
    assert mine == {"sea": 3}
    public = {t["name"]: t["count"] for t in anon_client.get("/api/tags/").json()["results"]}
    assert public == {"sea": 2}
    only_mine = api_client.get("/api/tags/?mine=true").json()["results"]
    assert [(t["name"], t["count"]) for t in only_mine] == [("sea", 2)]


def test_prompt_helper_versions_and_rollback(api_client, user):
    resp = api_client.post("/api/prompt-helpers/", {"name": "storm", "prompt": "a stormy sea",
                                                    "negative_prompt": "blurry"}, format="json")
    assert resp.status_code == 201, resp.content
    hid = resp.json()["id"]
    assert resp.json()["current_version"] == 1
    resp = api_client.patch(f"/api/prompt-helpers/{hid}/", {"prompt": "a calm sea"},
                            format="json")
    assert resp.json()["current_version"] == 2
    resp = api_client.patch(f"/api/prompt-helpers/{hid}/", {"name": "sea"}, format="json")
    assert resp.json()["current_version"] == 2 and resp.json()["name"] == "sea"
    versions = api_client.get(f"/api/prompt-helpers/{hid}/versions/").json()
    assert [(v["version"], v["prompt"]) for v in versions] == [(2, "a calm sea"),
                                                               (1, "a stormy sea")]
    resp = api_client.post(f"/api/prompt-helpers/{hid}/rollback/", {"version": 1},
                           format="json")
    assert resp.status_code == 200
    assert resp.json()["prompt"] == "a stormy sea" and resp.json()["current_version"] == 3
    helper = PromptHelper.objects.get(pk=hid)
    assert helper.embedding and helper.embedder.startswith("hashing-tfidf")
    resp = api_client.post(f"/api/prompt-helpers/{hid}/rollback/", {"version": 99},
                           format="json")
    assert resp.status_code == 400 and resp.json()["code"] == "unknown_version"


def test_themes_remix_and_favorites(api_client, user, admin_user):
    from rest_framework.test import APIClient

    staff = APIClient()
    staff.force_authenticate(admin_user)
    resp = staff.post("/api/theme-helpers/", {"name": "Noir", "terms": ["rain", "neon"],
                                              "is_shared": True}, format="json")
    assert resp.status_code == 201 and resp.json()["owner"] is None
    shared = resp.json()["id"]
    listing = api_client.get("/api/theme-helpers/").json()["results"]
    assert [t["id"] for t in listing] == [shared] and listing[0]["editable"] is False
    resp = api_client.post(f"/api/theme-helpers/{shared}/remix/",
                           {"add_terms": ["fog", "rain"]}, format="json")
    assert resp.status_code == 201
    remix = resp.json()
    assert remix["parent"] == shared and remix["owner"] == "alice"
    assert remix["terms"] == ["rain", "neon", "fog"] and remix["name"] == "Noir (remix)"
    resp = api_client.post("/api/theme-favorites/", {"theme": shared}, format="json")
    assert resp.status_code == 201
    fav = resp.json()["id"]
    assert api_client.post("/api/theme-favorites/", {"theme": shared},
                           format="json").status_code == 200
    theme = api_client.get(f"/api/theme-helpers/{shared}/").json()
    assert theme["is_favorite"] is True and theme["favorite_id"] == fav
    assert [f["theme"]["id"] for f in api_client.get("/api/theme-favorites/").json()[
        "results"]] == [shared]
    assert api_client.delete(f"/api/theme-favorites/{fav}/").status_code == 204
    assert api_client.get(f"/api/theme-helpers/{shared}/").json()["is_favorite"] is False
    # users cannot share
    resp = api_client.post("/api/theme-helpers/", {"name": "x", "is_shared": True},
                           format="json")
    assert resp.status_code == 403


def test_lora_filter_by_id_is_exact(api_client, user):
    seven = ImageFactory(user=user, loras=[{"name": "a", "weight": 1.0, "lora_id": 7}])
    ImageFactory(user=user, loras=[{"name": "b", "weight": 1.0, "lora_id": 70}])
    assert ids(api_client.get("/api/images/?lora=7")) == [seven.pk]
    assert ids(api_client.get("/api/images/?lora=" + "9" * 5000)) == []
    # A number of days beyond 100 years is refused like the other huge numbers (not a 500).
    huge_days = api_client.get("/api/usage/summary/?days=" + "9" * 5000)
    assert huge_days.status_code == 400 and "days" in huge_days.json()["fields"]
