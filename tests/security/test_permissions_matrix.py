"""A permissions matrix over EVERY API operation, read from the OpenAPI schema and the URL conf
(so endpoints added later are covered without editing this file):

- anonymous: 401 on every operation except the explicit public allow-list;
- every route under ``/api/`` is either in the schema or in the explicit non-schema list;
- other user: every operation on a per-user object (``{id}`` paths) is 404 for someone else's
  object; every ``{id}`` path must be classified below as owned, shared or staff-only;
- staff: staff-only writes are 403 for a signed-in non-staff user;
- library: every write to the shared library (LoRA files and fields, scans, Civitai, downloads,
  example images) is 403 for a signed-in user who is neither staff nor holds
  ``loras.manage_library``, except the caller's own favourite;
- session auth without a CSRF token cannot mutate.
"""

from __future__ import annotations

import re
import uuid

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from images.models import GenerationRequest, Image
from images.services import generation_create
from tests.factories import ModelProfileFactory, UserFactory

pytestmark = pytest.mark.django_db

PUBLIC = {  # anonymous may call these
    ("post", "/api/auth/token/"),
    # Public reads: the gallery shows images (and projects, tags) their owners made public;
    # private ones stay 404 to anonymous users (test_anonymous_never_sees_private_images).
    ("get", "/api/gallery/"), ("get", "/api/gallery/{id}/"),
    ("get", "/api/images/{id}/"), ("get", "/api/images/{id}/file/"),
    ("get", "/api/projects/{id}/gallery/"), ("get", "/api/tags/"), ("get", "/api/tags/{id}/"),
    # OpenAI-style image URLs (response_format "url"): the signed, expiring token is the key.
    ("get", "/v1/images/files/{token}"),
}
# The compatibility APIs (compat/): HTTP Basic / Bearer / Token only, never the session cookie
# (so no CSRF to check: a cookie alone is 401), each with its own error shape.
COMPAT_PREFIXES = ("/sdapi/", "/v1/")
# Routes the schema leaves out on purpose (schema itself, Swagger UI, browsable API root).
NOT_IN_SCHEMA = {"/api/schema/", "/api/docs/", "/api/redoc/", "/api/"}
PUBLIC_NOT_IN_SCHEMA = {"/api/schema/", "/api/docs/", "/api/redoc/"}
# ``{id}`` path prefixes whose objects belong to one user (others get 404) ...
OWNED = {"/api/jobs/{id}/": "job", "/api/status/{id}/": "generation",
         "/api/images/{id}/": "image", "/api/image-projects/{id}/": "project",
         "/api/projects/{id}/gallery/": "project", "/api/styles/{id}/": "style",
         "/api/prompt-helpers/{id}/": "prompt_helper", "/api/theme-helpers/{id}/": "theme",
         "/api/theme-favorites/{id}/": "theme_favorite"}
# ... and those that are shared by every signed-in user (the LoRA library and its example
# images, model profiles, tags) or public by design (the gallery shows public images only).
SHARED = ("/api/loras/{id}/", "/api/library-roots/{id}/", "/api/loras/{lora_id}/",
          "/api/example-images/{image_id}/", "/api/model-profiles/{slug}/", "/api/tags/{id}/",
          "/api/gallery/{id}/", "/v1/images/files/{token}")
STAFF_WRITES = ("/api/library-roots/",)
# Writes to the shared library: staff or the loras.manage_library permission (docs/library.md).
LIBRARY_WRITES = ("/api/loras/", "/api/example-images/", "/api/downloads/", "/api/library/")
# ... except these, which any signed-in user may call: PATCH of one's own favourite (the other
# fields are checked inside: test_library_permissions.py).
LIBRARY_OPEN = {("patch", "/api/loras/{id}/")}
MUTATING = {"post", "put", "patch", "delete"}


def _operations():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    ops = []
    for path, item in schema["paths"].items():
        for method, op in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                ops.append((method, path, op))
    return ops


OPERATIONS = _operations()


def _fill(path: str, value) -> str:
    return re.sub(r"\{[^}]+\}", str(value), path)


def _call(client, method, url):
    return getattr(client, method)(url, {}, format="json")


def _api_routes():
    """Every route under /api/ as a schema-like path (``{id}`` for converters)."""
    routes = []

    def walk(patterns, prefix):
        for p in patterns:
            text = prefix + str(p.pattern)
            if isinstance(p, URLResolver):
                walk(p.url_patterns, text)
            elif isinstance(p, URLPattern):
                routes.append(text)

    walk(get_resolver().url_patterns, "/")
    out = set()
    for r in routes:
        if not r.startswith("/api/"):
            continue
        if "format>" in r:
            continue  # DRF format-suffix twins of the same views
        r = r.replace("^", "").replace("$", "")
        name = lambda m: "{id}" if m.group(1) == "pk" else "{" + m.group(1) + "}"  # noqa: E731
        r = re.sub(r"\(\?P<(\w+)>[^)]*\)", name, r)  # regex routes (the router)
        r = re.sub(r"<(?:\w+:)?(\w+)>", name, r)  # path() converters
        out.add(r)
    return out


def test_every_api_route_is_in_the_schema_or_listed():
    schema_paths = {path for _, path, _ in OPERATIONS}
    missing = sorted(r for r in _api_routes() - schema_paths - NOT_IN_SCHEMA)
    assert not missing, f"routes neither in the OpenAPI schema nor in NOT_IN_SCHEMA: {missing}"


@pytest.mark.parametrize("method,path", [(m, p) for m, p, _ in OPERATIONS])
def test_anonymous_gets_401_except_public(method, path):
    client = APIClient()
    r = _call(client, method, _fill(path, 1))
    if (method, path) in PUBLIC:
        assert r.status_code != 401, r.content
        return
    assert r.status_code == 401, (method, path, r.status_code, r.content[:200])
    body = r.json()
    if path.startswith("/v1/"):  # OpenAI's shape: {"error": {"message", "type", "code"...}}
        assert body["error"]["message"] and body["error"]["type"], body
    elif path.startswith("/sdapi/"):  # A1111's: {"detail": ...} (+ our code)
        assert body.get("detail") or body.get("error"), body
    else:
        assert body["code"] == "not_authenticated"


@pytest.mark.parametrize("path", sorted(PUBLIC_NOT_IN_SCHEMA))
def test_public_documentation_routes(path):
    assert APIClient().get(path).status_code == 200


def test_every_id_path_is_classified():
    id_paths = {p for _, p, _ in OPERATIONS if "{" in p}
    unclassified = sorted(p for p in id_paths if not any(p.startswith(k) for k in OWNED)
                          and not p.startswith(SHARED))
    assert not unclassified, ("classify these paths in OWNED (per-user, others get 404) or "
                              f"SHARED: {unclassified}")


@pytest.fixture
def owned_objects():
    """One private object of each owned kind for ``alice``, keyed like ``OWNED`` values."""
    alice = UserFactory(username="alice")
    ModelProfileFactory()
    gen = generation_create(user=alice, params={"prompt": "a kite"}, enqueue=False)
    image = Image.objects.create(
        user=alice, request=gen, file="images/x.png", seed=1, steps=1, guidance_scale=1.0,
        prompt="a kite", provider="fake", model_name="Fake", is_public=False)
    from images.models import Project, PromptHelper, Style, ThemeFavorite, ThemeHelper

    theme = ThemeHelper.objects.create(owner=alice, name="t", terms=["x"], is_shared=False)
    return {"job": gen.job_id, "generation": gen.pk, "image": image.pk,
            "project": Project.objects.create(owner=alice, name="p", is_public=False).pk,
            "style": Style.objects.create(owner=alice, name="s", is_shared=False).pk,
            "prompt_helper": PromptHelper.objects.create(owner=alice, name="h", prompt="x").pk,
            "theme": theme.pk,
            "theme_favorite": ThemeFavorite.objects.create(user=alice, theme=theme).pk}


def _client_for(user):
    from rest_framework.authtoken.models import Token

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


OWNED_OPS = [(m, p) for m, p, _ in OPERATIONS
             if any(p.startswith(prefix) for prefix in OWNED)]


@pytest.mark.parametrize("method,path", OWNED_OPS)
def test_other_users_objects_are_404(owned_objects, method, path):
    kind = next(v for k, v in OWNED.items() if path.startswith(k))
    mallory = _client_for(UserFactory(username="mallory"))
    r = _call(mallory, method, _fill(path, owned_objects[kind]))
    if r.status_code != 404:
        # A body check that runs before the lookup may answer first (400): acceptable only
        # when a missing object gets the very same answer (nothing tells that it exists).
        missing = _call(mallory, method, _fill(path, 999999))
        assert (r.status_code, r.json()) == (missing.status_code, missing.json()), \
            (method, path, r.status_code, r.content[:200])
    assert r.status_code in (400, 404), (method, path, r.status_code, r.content[:200])
    # ... while the owner reaches it (GETs), so the 404 is about ownership.
    if method == "get" and not path.endswith("/file/"):
        alice = _client_for(UserFactory(username="alice"))
        assert _call(alice, method, _fill(path, owned_objects[kind])).status_code == 200


def test_anonymous_never_sees_private_images(owned_objects):
    anon = APIClient()
    for path in ("/api/images/{id}/", "/api/images/{id}/file/", "/api/gallery/{id}/"):
        assert anon.get(_fill(path, owned_objects["image"])).status_code == 404, path
    assert anon.get(_fill("/api/projects/{id}/gallery/", owned_objects["project"])
                    ).status_code == 404
    assert anon.get("/api/gallery/").json()["count"] == 0


def test_private_objects_of_others_never_listed(owned_objects):
    mallory = _client_for(UserFactory(username="mallory"))
    for url in ("/api/jobs/", "/api/images/", "/api/gallery/", "/api/user-images/",
                "/api/image-projects/", "/api/styles/", "/api/prompt-helpers/",
                "/api/theme-helpers/", "/api/theme-favorites/"):
        body = mallory.get(url).json()
        assert body["count"] == 0, (url, body)
    assert not GenerationRequest.objects.filter(user__username="mallory").exists()


@pytest.mark.parametrize("method,path", [(m, p) for m, p, _ in OPERATIONS
                                         if m in MUTATING and p.startswith(STAFF_WRITES)])
def test_staff_only_writes_are_403_for_others(method, path, tmp_path):
    from loras.models import LibraryRoot

    root = LibraryRoot.objects.create(name="r", path=str(tmp_path))
    user = _client_for(UserFactory(username="bob"))
    r = _call(user, method, _fill(path, root.pk))
    assert r.status_code == 403, (method, path, r.status_code, r.content[:200])
    assert r.json()["code"] == "permission_denied"
    assert LibraryRoot.objects.filter(pk=root.pk, name="r", path=str(tmp_path)).exists()


@pytest.mark.parametrize("method,path", [(m, p) for m, p, _ in OPERATIONS
                                         if m in MUTATING and p.startswith(LIBRARY_WRITES)
                                         and (m, p) not in LIBRARY_OPEN])
def test_library_writes_are_403_for_users_who_do_not_manage_it(method, path, tmp_path):
    """The permission is checked before anything else (the body, the object): nothing about
    the library leaks and nothing changes."""
    from loras.models import LibraryRoot, LoraModel

    root = LibraryRoot.objects.create(name="r", path=str(tmp_path))
    lora = LoraModel.objects.create(root=root, relative_path="a.safetensors", name="a",
                                    file_name="a.safetensors", notes="n")
    user = _client_for(UserFactory(username="bob"))
    r = _call(user, method, _fill(path, lora.pk))
    assert r.status_code == 403, (method, path, r.status_code, r.content[:200])
    assert r.json()["code"] == "permission_denied"
    assert LoraModel.objects.filter(pk=lora.pk, status="present", notes="n").exists()


def test_staff_may_write_library_roots(tmp_path):
    staff = UserFactory(username="root")
    staff.is_staff = True
    staff.save()
    r = _client_for(staff).post("/api/library-roots/", {"name": "n", "path": str(tmp_path)},
                                format="json")
    assert r.status_code == 201, r.content


@pytest.mark.parametrize("method,path", [(m, p) for m, p, _ in OPERATIONS
                                         if m in MUTATING and (m, p) not in PUBLIC
                                         and p.startswith(COMPAT_PREFIXES)])
def test_compat_writes_ignore_the_session_cookie(method, path):
    """A signed-in browser session cannot drive the A1111/OpenAI adapters at all (401): they
    read only the Authorization header, so another site's page has nothing to ride."""
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(UserFactory(username="carol"))
    r = _call(client, method, _fill(path, uuid.uuid4().int % 1000 + 1))
    assert r.status_code == 401, (method, path, r.status_code, r.content[:200])


@pytest.mark.parametrize("method,path", [(m, p) for m, p, _ in OPERATIONS
                                         if m in MUTATING and (m, p) not in PUBLIC
                                         and not p.startswith(COMPAT_PREFIXES)])
def test_session_writes_need_csrf(method, path):
    """A signed-in browser session cannot be driven cross-site: no CSRF token, 403."""
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(UserFactory(username="carol"))
    # force_login sets the session; the request lacks the CSRF token.
    r = _call(client, method, _fill(path, uuid.uuid4().int % 1000 + 1))
    assert r.status_code == 403, (method, path, r.status_code, r.content[:200])
