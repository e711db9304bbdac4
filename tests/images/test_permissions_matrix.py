"""Permissions of every images library endpoint for the owner, another user, an anonymous
client and staff (who is not the owner): others' private objects are 404, visible objects one
may not change are 403, anonymous writes are 401, staff manage shared styles and themes."""

import pytest
from rest_framework.test import APIClient

from images.models import Project, Style, ThemeFavorite, ThemeHelper, UsageLog
from images.services.library import prompt_helper_create
from tests.factories import ImageFactory

pytestmark = pytest.mark.django_db

ROLES = ("owner", "other", "anon", "staff")

# (method, url, body, expected status per role in ROLES order)
MATRIX = [
    ("get", "/api/images/", None, (200, 200, 401, 200)),
    ("get", "/api/images/{private}/", None, (200, 404, 404, 404)),
    ("get", "/api/images/{public}/", None, (200, 200, 200, 200)),
    ("patch", "/api/images/{private}/", {"title": "t"}, (200, 404, 401, 404)),
    ("patch", "/api/images/{public}/", {"title": "t"}, (200, 403, 401, 403)),
    ("delete", "/api/images/{private}/", None, (204, 404, 401, 404)),
    ("delete", "/api/images/{public}/", None, (204, 403, 401, 403)),
    ("post", "/api/images/{private}/narrate/", None, (202, 404, 401, 404)),
    ("post", "/api/images/{public}/narrate/", None, (202, 403, 401, 403)),
    ("get", "/api/images/{private}/file/", None, (200, 404, 404, 404)),
    ("get", "/api/images/{public}/file/?variant=thumbnail", None, (200, 200, 200, 200)),
    ("get", "/api/gallery/", None, (200, 200, 200, 200)),
    ("get", "/api/gallery/{public}/", None, (200, 200, 200, 200)),
    ("get", "/api/gallery/{private}/", None, (404, 404, 404, 404)),
    ("get", "/api/user-images/?user=alice", None, (200, 200, 200, 200)),
    ("get", "/api/user-images/", None, (200, 200, 401, 200)),
    ("get", "/api/styles/", None, (200, 200, 401, 200)),
    ("post", "/api/styles/", {"name": "n"}, (201, 201, 401, 201)),
    ("get", "/api/styles/{style}/", None, (200, 404, 401, 404)),
    ("patch", "/api/styles/{style}/", {"name": "n"}, (200, 404, 401, 404)),
    ("delete", "/api/styles/{style}/", None, (204, 404, 401, 404)),
    ("get", "/api/styles/{shared_style}/", None, (200, 200, 401, 200)),
    ("patch", "/api/styles/{shared_style}/", {"name": "n"}, (403, 403, 401, 200)),
    ("delete", "/api/styles/{shared_style}/", None, (403, 403, 401, 204)),
    ("get", "/api/tags/", None, (200, 200, 200, 200)),
    ("get", "/api/image-projects/", None, (200, 200, 401, 200)),
    ("post", "/api/image-projects/", {"name": "p"}, (201, 201, 401, 201)),
    ("get", "/api/image-projects/{project}/", None, (200, 404, 401, 404)),
    ("patch", "/api/image-projects/{project}/", {"name": "p"}, (200, 404, 401, 404)),
    ("delete", "/api/image-projects/{project}/", None, (204, 404, 401, 404)),
    ("get", "/api/image-projects/{public_project}/", None, (200, 200, 401, 200)),
    ("patch", "/api/image-projects/{public_project}/", {"name": "p"}, (200, 403, 401, 403)),
    ("get", "/api/projects/{project}/gallery/", None, (200, 404, 404, 404)),
    ("get", "/api/projects/{public_project}/gallery/", None, (200, 200, 200, 200)),
    ("get", "/api/prompt-helpers/", None, (200, 200, 401, 200)),
    ("post", "/api/prompt-helpers/", {"name": "h", "prompt": "p"}, (201, 201, 401, 201)),
    ("get", "/api/prompt-helpers/{helper}/", None, (200, 404, 401, 404)),
    ("patch", "/api/prompt-helpers/{helper}/", {"prompt": "q"}, (200, 404, 401, 404)),
    ("delete", "/api/prompt-helpers/{helper}/", None, (204, 404, 401, 404)),
    ("get", "/api/prompt-helpers/{helper}/versions/", None, (200, 404, 401, 404)),
    ("post", "/api/prompt-helpers/{helper}/rollback/", {"version": 1}, (200, 404, 401, 404)),
    ("get", "/api/prompt-helpers/similar/?q=sea", None, (200, 200, 401, 200)),
    ("get", "/api/theme-helpers/", None, (200, 200, 401, 200)),
    ("post", "/api/theme-helpers/", {"name": "t"}, (201, 201, 401, 201)),
    ("get", "/api/theme-helpers/{theme}/", None, (200, 404, 401, 404)),
    ("patch", "/api/theme-helpers/{theme}/", {"name": "t"}, (200, 404, 401, 404)),
    ("delete", "/api/theme-helpers/{theme}/", None, (204, 404, 401, 404)),
    ("get", "/api/theme-helpers/{shared_theme}/", None, (200, 200, 401, 200)),
    ("patch", "/api/theme-helpers/{shared_theme}/", {"name": "t"}, (403, 403, 401, 200)),
    ("delete", "/api/theme-helpers/{shared_theme}/", None, (403, 403, 401, 204)),
    ("post", "/api/theme-helpers/{shared_theme}/remix/", {}, (201, 201, 401, 201)),
    ("post", "/api/theme-helpers/{theme}/remix/", {}, (201, 404, 401, 404)),
    ("get", "/api/theme-favorites/", None, (200, 200, 401, 200)),
    ("post", "/api/theme-favorites/", {"theme": "{shared_theme}"}, (200, 201, 401, 201)),
    ("post", "/api/theme-favorites/", {"theme": "{theme}"}, (201, 404, 401, 404)),
    ("delete", "/api/theme-favorites/{favorite}/", None, (204, 404, 401, 404)),
    ("get", "/api/usage/", None, (200, 200, 401, 200)),
    ("get", "/api/usage/summary/", None, (200, 200, 401, 200)),
]


@pytest.fixture
def objects(user, admin_user):
    return {
        "private": ImageFactory(user=user).pk,
        "public": ImageFactory(user=user, is_public=True).pk,
        "style": Style.objects.create(owner=user, name="mine").pk,
        "shared_style": Style.objects.create(owner=None, name="shared", is_shared=True).pk,
        "project": Project.objects.create(owner=user, name="p").pk,
        "public_project": Project.objects.create(owner=user, name="pp", is_public=True).pk,
        "helper": prompt_helper_create(user=user, data={"name": "h", "prompt": "sea"}).pk,
        "theme": ThemeHelper.objects.create(owner=user, name="mine").pk,
        "shared_theme": (shared := ThemeHelper.objects.create(name="s", is_shared=True)).pk,
        "favorite": ThemeFavorite.objects.create(user=user, theme=shared).pk,
        "usage": UsageLog.objects.create(user=user, provider="fake", model_name="F").pk,
    }


def client_for(role, *, api_client, other_user, admin_user):
    if role == "owner":
        return api_client
    client = APIClient()
    if role != "anon":
        client.force_authenticate({"other": other_user, "staff": admin_user}[role])
    return client


def _fill(value, objects):
    if isinstance(value, str):
        return value.format(**objects) if "{" in value else value
    if isinstance(value, dict):
        return {k: (int(_fill(v, objects)) if isinstance(v, str) and v.startswith("{")
                    else v) for k, v in value.items()}
    return value


@pytest.mark.parametrize("role_index, role", list(enumerate(ROLES)))
@pytest.mark.parametrize("method, url, body, expected", MATRIX,
                         ids=[f"{m.upper()} {u}" for m, u, _, _ in MATRIX])
def test_permission_matrix(method, url, body, expected, role_index, role, objects, api_client,
                           other_user, admin_user):
    client = client_for(role, api_client=api_client, other_user=other_user,
                        admin_user=admin_user)
    kwargs = {"format": "json"} if body is not None else {}
    args = [_fill(body, objects)] if body is not None else []
    resp = getattr(client, method)(_fill(url, objects), *args, **kwargs)
    assert resp.status_code == expected[role_index], (role, resp.status_code,
                                                      getattr(resp, "content", b"")[:300])
    if resp.status_code >= 400:
        assert set(resp.json()) >= {"code", "message"}


def test_lists_never_leak_private_objects(objects, api_client, other_user, admin_user):
    for role in ("other", "anon", "staff"):
        client = client_for(role, api_client=api_client, other_user=other_user,
                            admin_user=admin_user)
        for url in ("/api/gallery/", "/api/user-images/?user=alice"):
            seen = {x["id"] for x in client.get(url).json()["results"]}
            assert seen == {objects["public"]}, (role, url)
        if role == "anon":
            continue
        for url, key in (("/api/images/", "private"), ("/api/styles/", "style"),
                         ("/api/image-projects/", "project"),
                         ("/api/prompt-helpers/", "helper"),
                         ("/api/theme-helpers/", "theme")):
            seen = {x["id"] for x in client.get(url).json()["results"]}
            assert objects[key] not in seen, (role, url)
        similar = client.get("/api/prompt-helpers/similar/?q=sea").json()["results"]
        assert similar == []
    usage = client_for("other", api_client=api_client, other_user=other_user,
                       admin_user=admin_user).get("/api/usage/").json()
    assert usage["count"] == 0
    staff_usage = client_for("staff", api_client=api_client, other_user=other_user,
                             admin_user=admin_user).get("/api/usage/").json()
    assert staff_usage["count"] == 1

