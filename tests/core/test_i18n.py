"""Languages (issue 15): pages in English, Simplified Chinese and Japanese, the language switcher,
complete catalogs, API messages after Accept-Language with English codes, localised dates and
numbers. Django picks the language from the language cookie, then Accept-Language, then
LANGUAGE_CODE (docs/i18n.md)."""

from __future__ import annotations

import gettext
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.template.loader import render_to_string
from django.utils import translation
from rest_framework.fields import Field

from images.models import Image, UsageLog
from tests.factories import LoraFactory

pytestmark = pytest.mark.django_db

LOCALE = Path(settings.BASE_DIR) / "locale"
CATALOGS = {"zh-hans": "zh_Hans", "ja": "ja"}
#: The templates whose strings are marked (the LoRA library pages are not yet).
MARKED = ["templates/base.html", "templates/404.html", "templates/500.html",
          "templates/registration/login.html", "templates/registration/locked_out.html",
          "templates/example_images/section.html", *sorted(
              str(p.relative_to(settings.BASE_DIR))
              for p in (Path(settings.BASE_DIR) / "templates/images").glob("*.html"))]


def _po_entries(lang_dir: str, domain: str = "django") -> list[dict]:
    """The entries of locale/<lang_dir>/LC_MESSAGES/<domain>.po as ``{"msgid", "plural",
    "msgstr", "fuzzy"}`` (the header entry left out; ``plural`` is "" unless the entry has a
    ``msgid_plural``, then ``msgstr`` is its ``msgstr[0]``, the one form of Chinese and Japanese).
    A small reader of the PO format: comments, then ``msgid``/``msgstr`` with continuation
    lines."""
    path = LOCALE / lang_dir / "LC_MESSAGES" / f"{domain}.po"
    entries = []
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        m = re.search(r'^msgid ((?:".*"\n?)+)(?:msgid_plural ((?:".*"\n?)+))?'
                      r'msgstr(?:\[0\])? ((?:".*"\n?)+)', block, re.M)
        if not m:
            continue
        text = [("".join(re.findall(r'"(.*)"', g or ""))).replace('\\"', '"') for g in m.groups()]
        if not text[0]:
            continue
        entries.append({"msgid": text[0], "plural": text[1], "msgstr": text[2],
                        "fuzzy": bool(re.search(r"^#,.*\bfuzzy\b", block, re.M))})
    return entries


@pytest.fixture
def client_alice(client, user):
    client.force_login(user)
    return client


def _image(user):
    return Image.objects.create(user=user, file="images/x.png", width=64, height=64, seed=7,
                                steps=4, guidance_scale=5.0, prompt="a fox", provider="fake",
                                model_name="Fake")


@pytest.mark.parametrize("domain,least", [("django", 200), ("djangojs", 10)])
@pytest.mark.parametrize("lang_dir", sorted(CATALOGS.values()))
def test_catalog_is_complete_and_compiled(lang_dir, domain, least):
    """No empty or fuzzy msgstr, placeholders kept, and the committed .mo holds every entry of
    the .po (so nobody needs GNU gettext to run the app)."""
    entries = _po_entries(lang_dir, domain)
    assert len(entries) > least
    untranslated = [e["msgid"] for e in entries if not e["msgstr"] or e["fuzzy"]]
    assert untranslated == []
    for e in entries:
        for placeholder in (r"%\(\w+\)s", r"%s"):
            assert sorted(re.findall(placeholder, e["msgid"])) == sorted(
                re.findall(placeholder, e["msgstr"])), e["msgid"]
    mo = LOCALE / lang_dir / "LC_MESSAGES" / f"{domain}.mo"
    with mo.open("rb") as fh:
        compiled = gettext.GNUTranslations(fh)
    stale = [e["msgid"] for e in entries
             if (compiled.ngettext(e["msgid"], e["plural"], 1) if e["plural"]
                 else compiled.gettext(e["msgid"])) != e["msgstr"]]
    assert stale == [], "run manage.py compilemessages -l zh_Hans -l ja (from locale/)"


def test_javascript_catalog_follows_the_language(client):
    """/jsi18n/ (Django's JavaScriptCatalog) hands the page scripts their strings (as JSON,
    non-ASCII escaped)."""
    def catalog(**headers) -> str:
        resp = client.get("/jsi18n/", **headers)
        assert resp.status_code == 200 and "javascript" in resp["Content-Type"]
        return resp.content.decode()

    assert json.dumps("以上です。") in catalog(HTTP_ACCEPT_LANGUAGE="ja")
    assert json.dumps("已全部加载。") in catalog(HTTP_ACCEPT_LANGUAGE="zh-hans")
    english = catalog()
    assert "django.gettext" in english and json.dumps("以上です。") not in english


def test_every_marked_string_is_in_the_catalogs():
    """Each literal {% translate "…" %} of the marked templates has an entry (makemessages
    was run after the last template change)."""
    msgids = {e["msgid"] for e in _po_entries("ja")}
    missing = set()
    for rel in MARKED:
        text = (Path(settings.BASE_DIR) / rel).read_text(encoding="utf-8")
        assert "{% load" in text and "i18n" in text, rel
        missing |= set(re.findall(r'\{% translate "([^"]+)" %\}', text)) - msgids
    assert missing == set()


@pytest.mark.parametrize("lang,gallery,generate,sampler", [
    ("zh-hans", "图库", "生成", "采样器"),
    ("ja", "ギャラリー", "生成", "サンプラー"),
])
def test_pages_follow_accept_language(client_alice, user, fake_profile, lang, gallery,
                                      generate, sampler):
    image = _image(user)
    pages = {"/": [sampler, "反" if lang == "zh-hans" else "ネガティブプロンプト"],
             "/gallery/": [gallery, "收藏优先" if lang == "zh-hans" else "お気に入りを先に"],
             "/projects/": ["创建项目" if lang == "zh-hans" else "プロジェクトを作成"],
             "/projects/5/": ["在图库中打开" if lang == "zh-hans" else "ギャラリーで開く"],
             "/usage/": ["每日生成次数" if lang == "zh-hans" else "1日あたりの生成数"],
             f"/images/{image.pk}/": ["种子" if lang == "zh-hans" else "シード"]}
    for url, words in pages.items():
        html = client_alice.get(url, HTTP_ACCEPT_LANGUAGE=lang).content.decode()
        assert f'<html lang="{lang}">' in html, url
        assert f">{gallery}</a>" in html, url  # the nav
        for word in words:
            assert word in html, (url, word)
        assert ">Gallery</a>" not in html, url
    english = client_alice.get("/gallery/").content.decode()
    assert '<html lang="en">' in english and ">Gallery</a>" in english


@pytest.mark.parametrize("lang,login,not_found,server_error,locked,examples", [
    ("zh-hans", "登录", "页面不存在", "出错了", "返回登录表单", "示例图像"),
    ("ja", "ログイン", "ページが見つかりません", "問題が発生しました", "ログインフォームに戻る",
     "サンプル画像"),
])
def test_other_templates_translated(client, lang, login, not_found, server_error, locked,
                                    examples):
    html = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE=lang).content.decode()
    assert f"<h1>{login}</h1>" in html
    resp = client.get("/no-such-page/", HTTP_ACCEPT_LANGUAGE=lang)
    assert resp.status_code == 404 and not_found in resp.content.decode()
    with translation.override(lang):
        assert server_error in render_to_string("500.html")
        assert locked in render_to_string("registration/locked_out.html", {"message": "x"})
        section = render_to_string("example_images/section.html",
                                   {"lora": LoraFactory(), "can_manage": True})
        assert examples in section and "Example images" not in section


def test_language_switcher_sets_cookie_and_next_page(client_alice):
    html = client_alice.get("/gallery/").content.decode()
    switcher = re.search(r'<form[^>]*id="lang-switch".*?</form>', html, re.S).group(0)
    assert 'action="/i18n/setlang/"' in switcher
    assert re.findall(r'<option value="([\w-]+)"', switcher) == ["en", "zh-hans", "ja"]
    resp = client_alice.post("/i18n/setlang/", {"language": "ja", "next": "/gallery/"})
    assert resp.status_code == 302 and resp["Location"] == "/gallery/"
    assert resp.cookies[settings.LANGUAGE_COOKIE_NAME].value == "ja"
    # The cookie wins over the browser's Accept-Language on every later page.
    html = client_alice.get("/usage/", HTTP_ACCEPT_LANGUAGE="en-US").content.decode()
    assert '<html lang="ja">' in html and ">ギャラリー</a>" in html
    assert '<option value="ja" selected' in html


def test_api_messages_follow_accept_language_codes_stay_english(api_client):
    """DRF's own messages come from DRF's catalogs; ``code`` is never translated."""
    english = api_client.post("/api/image-projects/", {}, format="json")
    assert english.status_code == 400
    assert english.json()["code"] == "invalid"
    assert english.json()["fields"]["name"] == ["This field is required."]
    for lang, sample in (("ja", "必須"), ("zh-hans", "必")):
        resp = api_client.post("/api/image-projects/", {}, format="json",
                               HTTP_ACCEPT_LANGUAGE=lang)
        body = resp.json()
        assert resp.status_code == 400 and body["code"] == "invalid"
        assert set(body["fields"]) == {"name"}
        assert sample in body["fields"]["name"][0], body
        assert sample in body["message"] and body["message"].startswith("name: ")
    # The Japanese text is DRF's own translation of "This field is required.".
    resp = api_client.post("/api/image-projects/", {}, format="json", HTTP_ACCEPT_LANGUAGE="ja")
    with translation.override("ja"):
        assert resp.json()["fields"]["name"] == [str(Field.default_error_messages["required"])]


@pytest.mark.parametrize("lang,since,seconds", [
    ("en", r"Since \w+\.? \d{1,2}, \d{4}", "12,345.5 s"),
    ("zh-hans", r"自 \d{4}年\d{1,2}月\d{1,2}日 起", "12345.5 s"),  # Django: no grouping
    ("ja", r"\d{4}年\d{1,2}月\d{1,2}日 以降", "12,345.5 s"),
])
def test_usage_dates_and_numbers_localised(client_alice, user, lang, since, seconds):
    UsageLog.objects.create(user=user, provider="fake", model_name="Fake", image_count=3,
                            duration_seconds=12345.5, estimated_cost=Decimal("0"))
    html = client_alice.get("/usage/", HTTP_ACCEPT_LANGUAGE=lang).content.decode()
    span = re.search(r'<span id="usage-since">(.*?)</span>', html).group(1)
    assert re.fullmatch(since, span), span
    assert f'<span class="value">{seconds}</span>' in html
