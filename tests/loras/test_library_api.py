"""The /api/loras/ list, detail, patch, preview, aggregates, and /api/library-roots/."""

import io
import struct
import zlib

import pytest
from PIL import Image

from loras.models import LibraryRoot, LoraFavorite
from tests.loras.test_library_ops import Library, lib, tree  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [item["name"] for item in response.json()["results"]]


@pytest.fixture
def catalog(lib, user, other_user):
    """Five LoRAs with varied fields (one trashed-looking row excluded by status); ``user``'s
    favourite is anime, ``other_user``'s is hero."""
    anime = lib.lora("sd15/anime.safetensors", base_model="SD 1.5", tags=["anime", "style"],
                     trigger_words=["anime style"], size=300, usage_count=5, nsfw_level=1,
                     civitai_model_id=10, civitai_version_id=11)
    LoraFavorite.objects.create(user=user, lora=anime)
    hero = lib.lora("sd15/char/hero.safetensors", base_model="SD 1.5", tags=["character"],
                    trigger_words=["h3ro"], size=100, notes="My favourite knight", nsfw_level=4)
    LoraFavorite.objects.create(user=other_user, lora=hero)
    lib.lora("sdxl/Landscape.safetensors", base_model="SDXL 1.0", tags=["style", "landscape"],
             size=200, usage_count=9)
    lib.lora("flux/detail.safetensors", base_model="Flux.1 D", tags=[], size=50, nsfw_level=16)
    lib.lora("gone.safetensors", base_model="SDXL 1.0", status="missing")
    return lib


def test_list_item_shape(catalog, api_client):
    r = api_client.get("/api/loras/?search=anime")
    assert r.status_code == 200
    body = r.json()
    assert {"count", "next", "previous", "results"} <= set(body)
    item = body["results"][0]
    assert set(item) == {
        "id", "name", "file_name", "relative_path", "folder", "root", "size", "base_model",
        "trigger_words", "tags", "nsfw_level", "preview_url", "favorite", "excluded", "status",
        "sha256", "autov2", "autov3", "network_module", "network_rank", "network_alpha",
        "preferred_weight", "notes", "usage_tips", "civitai_model_id", "civitai_version_id",
        "civitai_url", "created_at", "updated_at", "scan_error", "outside_root", "preview_type",
        "update_available", "usage_count", "last_used_at"}
    assert item["favorite"] is True and item["update_available"] is False
    assert item["preview_type"] is None and item["usage_count"] == 5
    assert item["relative_path"] == "sd15/anime.safetensors" and item["folder"] == "sd15"
    assert item["root"] == {"id": catalog.root.pk, "name": "main"}
    assert item["civitai_url"] == "https://civitai.com/models/10?modelVersionId=11"
    assert item["autov2"] == item["sha256"][:10]
    assert item["preview_url"] is None
    assert str(catalog.path) not in r.content.decode()


def test_list_filters(catalog, api_client):
    get = lambda q: names(api_client.get(f"/api/loras/?{q}"))  # noqa: E731
    assert get("") == ["anime", "detail", "hero", "Landscape"]
    assert get("base_model=SD 1.5") == ["anime", "hero"]
    assert get("base_model=SDXL 1.0,Flux.1 D") == ["detail", "Landscape"]
    assert get("base_model=SDXL 1.0&base_model=Flux.1 D") == ["detail", "Landscape"]
    assert get("tags=style") == ["anime", "Landscape"]
    assert get("tags=anime,landscape") == ["anime", "Landscape"]
    assert get("tags=style,landscape&tags_mode=all") == ["Landscape"]
    assert get("tags=sty") == []  # tags match whole tags
    assert get("folder=sd15") == ["anime"]
    assert get("folder_prefix=sd15") == ["anime", "hero"]
    assert get("favorite=true") == ["anime"]  # the caller's own favourites
    assert get("favorite=false") == ["detail", "hero", "Landscape"]
    assert get("has_civitai=true") == ["anime"]
    assert get("has_civitai=false") == ["detail", "hero", "Landscape"]
    assert get("nsfw_max=4") == ["anime", "hero", "Landscape"]
    assert get(f"root={catalog.root.pk}") == ["anime", "detail", "hero", "Landscape"]
    assert get("status=missing") == ["gone"]
    assert get("status=all") == ["anime", "detail", "gone", "hero", "Landscape"]


def test_search_is_case_insensitive_over_name_triggers_tags_notes(catalog, api_client):
    get = lambda q: names(api_client.get(f"/api/loras/?search={q}"))  # noqa: E731
    assert get("LANDSCAPE") == ["Landscape"]      # name + tag
    assert get("H3RO") == ["hero"]                # trigger word
    assert get("knight") == ["hero"]              # notes
    assert get("character") == ["hero"]           # tag
    assert get("detail.safetensors") == ["detail"]  # file name
    assert get("anime style") == ["anime"]        # every term must match
    assert get("nothing-like-this") == []


def test_ordering(catalog, api_client):
    get = lambda o: names(api_client.get(f"/api/loras/?ordering={o}"))  # noqa: E731
    assert get("-name") == ["Landscape", "hero", "detail", "anime"]
    assert get("size") == ["detail", "hero", "Landscape", "anime"]
    assert get("-size") == ["anime", "Landscape", "hero", "detail"]
    assert get("-usage_count")[:2] == ["Landscape", "anime"]
    assert get("created_at") == ["anime", "hero", "Landscape", "detail"]
    assert get("-created_at") == ["detail", "Landscape", "hero", "anime"]
    r = api_client.get("/api/loras/?ordering=path")
    assert r.status_code == 400 and r.json()["code"] == "invalid"


@pytest.mark.parametrize("query", ["root=abc", "nsfw_max=x", "tags_mode=some", "status=trashed"])
def test_bad_filter_values_are_400(catalog, api_client, query):
    r = api_client.get(f"/api/loras/?{query}")
    assert r.status_code == 400, r.content
    assert r.json()["code"] == "invalid"


def test_page_size_default_50_and_capped_at_100(lib, api_client):
    from loras.models import LoraModel

    LoraModel.objects.bulk_create([
        LoraModel(root=lib.root, relative_path=f"l{i:03}.safetensors", file_name=f"l{i:03}",
                  name=f"l{i:03}") for i in range(130)])
    assert len(api_client.get("/api/loras/").json()["results"]) == 50
    body = api_client.get("/api/loras/?page_size=500").json()
    assert len(body["results"]) == 100 and body["count"] == 130 and body["next"]
    assert len(api_client.get("/api/loras/?page_size=100&page=2").json()["results"]) == 30


def test_trashed_loras_are_never_listed(catalog, api_client):
    from loras.models import LoraModel

    LoraModel.objects.filter(name="hero").update(status="trashed")
    assert "hero" not in names(api_client.get("/api/loras/?status=all"))
    assert "hero" not in names(api_client.get("/api/loras/?search=hero&excluded=all"))


def test_detail_has_metadata_and_sidecars(lib, api_client):
    lora = lib.lora("a.safetensors", sidecars=(".civitai.info", ".preview.png"),
                    header_metadata={"ss_network_dim": "8"}, civitai={"id": 11})
    r = api_client.get(f"/api/loras/{lora.pk}/")
    assert r.status_code == 200
    body = r.json()
    assert body["header_metadata"] == {"ss_network_dim": "8"} and body["civitai"] == {"id": 11}
    assert sorted(body["sidecars"]) == ["a.civitai.info", "a.preview.png"]
    assert "license_flags" in body and "last_checked_at" in body
    assert api_client.get("/api/loras/999999/").status_code == 404


def test_patch_writes_allowed_fields(lib, api_client):
    lora = lib.lora("a.safetensors")
    r = api_client.patch(f"/api/loras/{lora.pk}/", {
        "tags": [" anime ", "style", "anime"], "trigger_words": ["a1"], "notes": "n",
        "preferred_weight": 0.7, "favorite": True, "nsfw_level": 8, "usage_tips": "t"},
        format="json")
    assert r.status_code == 200, r.content
    lora.refresh_from_db()
    assert lora.tags == ["anime", "style"] and lora.trigger_words == ["a1"]
    assert (lora.notes, lora.preferred_weight, lora.nsfw_level,
            lora.usage_tips) == ("n", 0.7, 8, "t")
    assert list(lora.favorites.values_list("user__username", flat=True)) == ["alice"]
    assert r.json()["favorite"] is True


@pytest.mark.parametrize("payload", [
    {"tags": "anime"}, {"tags": [""]}, {"tags": ["x" * 101]}, {"tags": [1]},
    {"trigger_words": [" "]}, {"nsfw_level": 33}, {"nsfw_level": -1},
    {"relative_path": "../../etc/passwd"}, {"sha256": "0" * 64},
])
def test_patch_validation(lib, api_client, payload):
    lora = lib.lora("a.safetensors", tags=["keep"])
    r = api_client.patch(f"/api/loras/{lora.pk}/", payload, format="json")
    assert r.status_code == 400, r.content
    lora.refresh_from_db()
    assert lora.tags == ["keep"] and lora.relative_path == "a.safetensors"


def png_bytes(size=(8, 6), color=(200, 10, 10)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


def bomb_png(width=40000, height=40000) -> bytes:
    """A tiny PNG file that claims width x height pixels (a decompression bomb's header)."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def upload(client, lora, data, name="p.png"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(f"/api/loras/{lora.pk}/preview/",
                       {"file": SimpleUploadedFile(name, data)}, format="multipart")


def test_preview_upload_is_stored_and_served(lib, api_client):
    lora = lib.lora("sub/a.safetensors")
    assert api_client.get(f"/api/loras/{lora.pk}/preview/").json()["code"] == "no_preview"
    r = upload(api_client, lora, png_bytes())
    assert r.status_code == 200, r.content
    assert r.json()["preview_url"] == f"/api/loras/{lora.pk}/preview/"
    assert "a.preview.png" in r.json()["sidecars"]
    r = api_client.get(f"/api/loras/{lora.pk}/preview/")
    assert r.status_code == 200 and r["Content-Type"] == "image/png"
    served = Image.open(io.BytesIO(b"".join(r.streaming_content)))
    assert served.size == (8, 6) and served.getpixel((0, 0)) == (200, 10, 10)
    # Replacing keeps one preview file, with the new content, and no temp file.
    upload(api_client, lora, png_bytes(color=(0, 0, 255)))
    assert tree(lib.path) == {"sub/a.safetensors", "sub/a.preview.png"}
    assert Image.open(lib.path / "sub/a.preview.png").getpixel((0, 0)) == (0, 0, 255)


def test_preview_upload_jpeg_becomes_jpg(lib, api_client):
    lora = lib.lora("a.safetensors")
    out = io.BytesIO()
    Image.new("RGB", (4, 4)).save(out, format="JPEG")
    assert upload(api_client, lora, out.getvalue(), "x.jpeg").status_code == 200
    assert "a.preview.jpg" in tree(lib.path)


@pytest.mark.parametrize("data,code", [
    (b"not an image at all", "invalid_image"),
    (png_bytes()[:40], "invalid_image"),
    (bomb_png(), "image_too_large"),
])
def test_preview_upload_refuses_bad_images_and_writes_nothing(lib, api_client, data, code):
    lora = lib.lora("a.safetensors", sidecars=(".preview.png",), preview="a.preview.png")
    before = (lib.path / "a.preview.png").read_bytes()
    r = upload(api_client, lora, data)
    assert r.status_code == 400 and r.json()["code"] == code, r.content
    assert tree(lib.path) == {"a.safetensors", "a.preview.png"}
    assert (lib.path / "a.preview.png").read_bytes() == before


def test_preview_from_url(lib, api_client, httpserver, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["localhost"]
    settings.OUTBOUND_ALLOW_PRIVATE = True
    httpserver.expect_request("/img.png").respond_with_data(png_bytes(), content_type="image/png")
    httpserver.expect_request("/text").respond_with_data("hello", content_type="text/plain")
    lora = lib.lora("a.safetensors")
    url = f"http://localhost:{httpserver.port}/img.png"
    r = api_client.post(f"/api/loras/{lora.pk}/preview/", {"url": url}, format="json")
    assert r.status_code == 200, r.content
    assert tree(lib.path) == {"a.safetensors", "a.preview.png"}
    r = api_client.post(f"/api/loras/{lora.pk}/preview/",
                        {"url": url.replace("/img.png", "/text")}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "invalid_image"
    r = api_client.post(f"/api/loras/{lora.pk}/preview/",
                        {"url": f"http://127.0.0.1:{httpserver.port}/img.png"}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "url_not_allowed"


def test_aggregates(catalog, api_client):
    from loras.models import LoraModel

    same = "ab" * 32
    LoraModel.objects.filter(name__in=["anime", "detail"]).update(sha256=same)
    Library(catalog.path.parent / "second", name="second").lora("x/hero.safetensors")
    dups = api_client.get("/api/loras/duplicates/").json()
    assert [(g["sha256"], sorted(i["name"] for i in g["loras"])) for g in dups] == \
        [(same, ["anime", "detail"])]
    conflicts = api_client.get("/api/loras/filename-conflicts/").json()
    assert [(g["name"], sorted(i["relative_path"] for i in g["loras"])) for g in conflicts] == \
        [("hero", ["sd15/char/hero.safetensors", "x/hero.safetensors"])]
    assert api_client.get("/api/loras/top-tags/?limit=2").json() == [
        {"tag": "style", "count": 2}, {"tag": "anime", "count": 1}]
    assert {"base_model": "SD 1.5", "count": 2} in api_client.get("/api/loras/base-models/").json()
    folders = api_client.get("/api/loras/folders/").json()
    main = next(f for f in folders if f["root"]["id"] == catalog.root.pk)
    assert main["folders"] == [{"path": "", "count": 4}, {"path": "flux", "count": 1},
                               {"path": "sd15", "count": 2}, {"path": "sd15/char", "count": 1},
                               {"path": "sdxl", "count": 1}]


def test_anonymous_is_401(anon_client, catalog):
    for url in ["/api/loras/", "/api/loras/duplicates/", "/api/library-roots/"]:
        assert anon_client.get(url).status_code == 401
    assert anon_client.post("/api/loras/bulk-delete/", {"ids": [1]}, format="json") \
        .status_code == 401


def test_library_roots_read_for_users_write_for_staff(api_client, user, tmp_path, lib):
    r = api_client.get("/api/library-roots/")
    assert r.status_code == 200 and r.json()[0]["name"] == "main"
    assert "path" not in r.json()[0]  # absolute server paths are for staff
    assert api_client.post("/api/library-roots/", {"path": str(tmp_path)},
                           format="json").status_code == 403
    user.is_staff = True
    user.save()
    assert api_client.post("/api/library-roots/", {"path": "relative/dir"},
                           format="json").status_code == 400
    assert api_client.post("/api/library-roots/", {"path": str(tmp_path / "nope")},
                           format="json").status_code == 400
    (tmp_path / "new").mkdir()
    r = api_client.post("/api/library-roots/", {"path": str(tmp_path / "new"), "name": "new"},
                        format="json")
    assert r.status_code == 201, r.content
    assert api_client.delete(f"/api/library-roots/{r.json()['id']}/").status_code == 204
    lib.lora("a.safetensors")
    r = api_client.delete(f"/api/library-roots/{lib.root.pk}/")
    assert r.status_code == 409 and r.json()["code"] == "root_in_use"
    assert LibraryRoot.objects.filter(pk=lib.root.pk).exists()
    r = api_client.patch(f"/api/library-roots/{lib.root.pk}/", {"path": str(tmp_path / "new")},
                         format="json")
    assert r.status_code == 409 and r.json()["code"] == "root_in_use"
    r = api_client.patch(f"/api/library-roots/{lib.root.pk}/", {"name": "renamed"},
                         format="json")
    assert r.status_code == 200 and r.json()["path"] == str(lib.path)


def test_fast_list_representation_matches_field_by_field(catalog):
    from rest_framework import serializers

    from loras.api.serializers import LoraSerializer
    from loras.models import LoraModel

    for lora in LoraModel.objects.select_related("root"):
        ser = LoraSerializer(lora)
        assert ser.data == serializers.ModelSerializer.to_representation(ser, lora)
