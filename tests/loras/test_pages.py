"""The LoRA library pages (/loras/, /loras/<id>/) with the Django test client: login, the
server-rendered first page and its filters, pagination links, the empty state, the detail page."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from loras.models import LibraryRoot, LoraFavorite, LoraModel

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_in(user):
    c = Client()
    c.force_login(user)
    return c


@pytest.fixture
def root(tmp_path):
    return LibraryRoot.objects.create(name="main", path=str(tmp_path / "loras"))


def make_lora(root, name, *, folder="", **fields):
    rel = f"{folder}/{name}.safetensors" if folder else f"{name}.safetensors"
    return LoraModel.objects.create(root=root, relative_path=rel, folder=folder,
                                    file_name=f"{name}.safetensors", name=name, **fields)


def card_names(html: str) -> list[str]:
    return re.findall(r'<article class="lora-card[^"]*"\s+data-id="\d+" data-name="([^"]*)"', html)


def test_pages_require_login(root):
    lora = make_lora(root, "inkwash")
    for url in ("/loras/", f"/loras/{lora.pk}/"):
        resp = Client().get(url)
        assert resp.status_code == 302
        assert resp["Location"].startswith("/accounts/login/?next=")


def test_list_renders_cards_with_preview_placeholder_badge_triggers(client_in, root):
    make_lora(root, "inkwash", base_model="SDXL 1.0", trigger_words=["inkwash style", "sumi-e"],
              preview="inkwash.preview.png", folder="styles")
    plain = make_lora(root, "plainchar", base_model="SD 1.5")
    make_lora(root, "gone", status=LoraModel.Status.TRASHED)
    make_lora(root, "hidden", excluded=True)

    resp = client_in.get("/loras/")
    assert resp.status_code == 200
    html = resp.content.decode()
    assert card_names(html) == ["inkwash", "plainchar"]  # trashed and excluded rows are not shown
    inkwash = LoraModel.objects.get(name="inkwash")
    assert f'src="/api/loras/{inkwash.pk}/preview/"' in html
    assert f'src="/api/loras/{plain.pk}/preview/"' not in html
    assert '<span class="lora-placeholder">SD 1.5</span>' in html
    assert 'data-copy="inkwash style"' in html and 'data-copy="sumi-e"' in html
    assert '<span class="badge">SDXL 1.0</span>' in html
    # The toolbar offers the distinct base models with counts and the folders.
    assert '<option value="SD 1.5" >SD 1.5 (1)</option>' in html
    assert '<option value="styles" >styles</option>' in html
    assert 'href="/loras/"' in html  # nav link in base.html
    assert "loras.css" in html and "loras.js" in html


def test_search_and_filters_narrow_the_grid(client_in, root, user, other_user):
    ink = make_lora(root, "inkwash", base_model="SDXL 1.0", tags=["style", "ink"],
                    folder="styles")
    LoraFavorite.objects.create(user=user, lora=ink)
    pixel = make_lora(root, "pixelart", base_model="SD 1.5", tags=["style"],
                      notes="retro 8-bit look")
    LoraFavorite.objects.create(user=other_user, lora=pixel)  # someone else's favourite
    make_lora(root, "alice_char", base_model="SD 1.5", trigger_words=["alice blue dress"],
              folder="characters")

    def names(query):
        return card_names(client_in.get("/loras/" + query).content.decode())

    assert names("?search=ink") == ["inkwash"]
    assert names("?search=8-BIT") == ["pixelart"]             # notes, case-insensitive
    assert names("?search=blue%20dress") == ["alice_char"]     # trigger words
    assert names("?base_model=SD+1.5") == ["alice_char", "pixelart"]
    assert names("?folder=characters") == ["alice_char"]
    assert names("?tags=style") == ["inkwash", "pixelart"]
    assert names("?tags=style,ink") == ["inkwash"]              # all tags must match
    assert names("?favorite=1") == ["inkwash"]  # the signed-in user's own
    assert names("?ordering=-name") == ["pixelart", "inkwash", "alice_char"]
    assert names("?ordering=bogus") == ["alice_char", "inkwash", "pixelart"]
    # The submitted values stay in the toolbar.
    html = client_in.get("/loras/?search=ink&favorite=1&ordering=-size").content.decode()
    assert 'name="search" value="ink"' in html
    assert re.search(r'id="f-favorite"[^>]*checked', html)
    assert '<option value="-size" selected>' in html


def test_no_match_and_empty_library_states(client_in, root, settings):
    settings.LORA_ROOTS = ["/srv/loras/main"]
    resp = client_in.get("/loras/")
    html = resp.content.decode()
    assert 'id="lora-empty"' in html
    assert "LORA_ROOTS" in html and "/srv/loras/main" in html
    assert "data-scan" in html  # the empty state offers a Scan button

    make_lora(root, "inkwash")
    html = client_in.get("/loras/?search=nothing-like-this").content.decode()
    assert 'id="lora-none"' in html and 'id="lora-empty"' not in html


def test_first_page_is_50_with_a_load_more_link_keeping_filters(client_in, root):
    for i in range(55):
        make_lora(root, f"lora{i:03d}", base_model="SD 1.5")
    html = client_in.get("/loras/?base_model=SD+1.5").content.decode()
    assert len(card_names(html)) == 50
    m = re.search(r'id="load-more" href="\?([^"]+)"', html)
    assert m and m.group(1).replace("&amp;", "&") == "base_model=SD+1.5&ordering=name&page=2"
    assert "50 of 55" in html
    html2 = client_in.get("/loras/?base_model=SD+1.5&page=2").content.decode()
    assert card_names(html2) == [f"lora{i:03d}" for i in range(50, 55)]
    assert 'id="load-more"' not in html2


def test_nsfw_cards_are_marked_for_blurring(client_in, root):
    make_lora(root, "safe", nsfw_level=2)
    make_lora(root, "risque", nsfw_level=4)
    html = client_in.get("/loras/").content.decode()
    assert re.search(r'<article class="lora-card nsfw"\s+data-id="\d+" data-name="risque"', html)
    assert re.search(r'<article class="lora-card"\s+data-id="\d+" data-name="safe"', html)
    assert 'class="lora-grid blur-nsfw"' in html  # default on until the browser setting says off


def test_detail_page_shows_file_hashes_metadata_and_links(client_in, root):
    sha = "a" * 10 + "b" * 54
    lora = make_lora(
        root, "inkwash", folder="styles", size=151_000_000, base_model="SDXL 1.0",
        sha256=sha, autov3="c" * 64, network_module="networks.lora", network_rank=16,
        network_alpha=8.0, trigger_words=["inkwash style"], tags=["style", "ink"],
        notes="great at 0.7", preferred_weight=0.7, civitai_model_id=12345,
        civitai_version_id=67890,
        header_metadata={"ss_network_dim": "16", "ss_base_model_version": "sdxl_base_v1-0"},
    )
    resp = client_in.get(f"/loras/{lora.pk}/")
    assert resp.status_code == 200
    html = resp.content.decode()
    assert "<code>styles/inkwash.safetensors</code>" in html
    assert "144.0 MB <span class=\"muted\">(151000000 bytes)</span>" in html  # / 2**20
    assert 'id="info-root">main<' in html
    assert "networks.lora · rank 16 · alpha 8" in html
    assert f'<code id="hash-sha256">{sha}</code>' in html
    assert '<code id="hash-autov2">aaaaaaaaaa</code>' in html
    assert f'<code id="hash-autov3">{"c" * 64}</code>' in html
    assert 'data-copy="inkwash style"' in html
    assert 'value="style, ink"' in html
    assert ">great at 0.7</textarea>" in html
    assert 'href="https://civitai.com/models/12345?modelVersionId=67890"' in html
    assert 'href="/?lora=inkwash:0.7"' in html
    assert "<code>ss_base_model_version</code>" in html and "sdxl_base_v1-0" in html
    assert 'id="civitai-refresh"' in html


def test_detail_page_without_civitai_or_weight_and_404(client_in, root):
    lora = make_lora(root, "my lora", nsfw_level=8)
    html = client_in.get(f"/loras/{lora.pk}/").content.decode()
    assert 'id="civitai-link"' not in html
    assert 'href="/?lora=my%20lora:1"' in html
    assert "nsfw blur-nsfw" in html
    assert client_in.get("/loras/999999/").status_code == 404


def test_bad_filter_value_is_shown_not_a_server_error(client_in, root):
    make_lora(root, "inkwash")
    resp = client_in.get("/loras/?nsfw_max=lots")
    assert resp.status_code == 200
    html = resp.content.decode()
    assert re.search(r'<p class="error-box" id="lora-error" role="alert">nsfw_max: [^<]+</p>', html)
    assert card_names(html) == []


def test_trashed_lora_detail_offers_restore(client_in, root):
    lora = make_lora(root, "binned", status=LoraModel.Status.TRASHED)
    html = client_in.get(f"/loras/{lora.pk}/").content.decode()
    assert re.search(r'id="lora-status">This file is <strong>trashed</strong>', html)
    assert 'id="restore-btn"' in html
