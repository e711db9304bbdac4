"""No page loads anything from a third-party origin (issue 15): a self-hosted Atelier is often
offline or firewalled, so every script, style sheet, font, image and frame is served by the app
itself (Swagger UI and ReDoc by drf-spectacular-sidecar).

The rule, checked on every HTML page the URL configuration serves without a parameter, plus
one detail page of each kind, logged in as a superuser:
- any ``src``, ``srcset``, ``poster``, ``data``, ``action``, ``formaction`` and any ``href``
  of a ``<link>`` (style sheets, icons, preloads) must be relative or on the app's own origin;
- inline and linked CSS may not ``@import`` or ``url()`` another origin;
- ``<a href>`` may point elsewhere (a LoRA's "Open on Civitai" page, the docs of a standard):
  following a link is the user's choice and loads nothing by itself.
tests/core/test_docs_offline_browser.py then opens the main pages and the API docs with every
request to another host aborted, and checks that none was attempted and that Swagger UI and
ReDoc render.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from django.contrib.staticfiles import finders
from django.urls import URLPattern, URLResolver, get_resolver

from tests.factories import ImageFactory, LoraFactory, ModelProfileFactory, UserFactory

LOADING_ATTRS = {"src", "srcset", "poster", "data", "action", "formaction"}
CSS_EXTERNAL = re.compile(
    r"""(?:@import\s+(?:url\()?|url\()\s*['"]?\s*((?:[a-z][a-z0-9+.-]*:)?//[^'")\s]+)""",
    re.IGNORECASE)
# Pages that are not worth fetching on the walk: they log out or stream files.
SKIP = re.compile(r"logout|/media/|^/ws/")


def _is_external(url: str) -> bool:
    url = url.strip()
    if not url or url.startswith(("#", "data:", "blob:", "javascript:", "mailto:")):
        return False
    parts = urlsplit(url)
    if parts.scheme and parts.scheme not in ("http", "https", "ws", "wss"):
        return True
    return bool(parts.netloc) and parts.hostname not in ("testserver", "localhost", "127.0.0.1")


class _Refs(HTMLParser):
    """Collects (tag, attribute, url) of everything a page would load, and its inline CSS."""

    def __init__(self):
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []
        self.css: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value is None:
                continue
            if name in LOADING_ATTRS:
                urls = [u.split()[0] for u in value.split(",") if u.strip()] \
                    if name == "srcset" else [value]
                self.refs += [(tag, name, u) for u in urls]
            elif name == "href" and tag != "a":
                self.refs.append((tag, name, value))
            elif name == "style":
                self.css.append(value)
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.css.append(data)


def _static_paths(pattern_list, prefix=""):
    """Every route of the URL configuration that takes no parameter."""
    for entry in pattern_list:
        route = str(entry.pattern)
        if isinstance(entry, URLResolver):
            if "<" in route or "(" in route:
                continue
            yield from _static_paths(entry.url_patterns, prefix + route.lstrip("^"))
        elif isinstance(entry, URLPattern):
            if "<" in route or "(" in route or "[" in route:
                continue
            route = route.lstrip("^").rstrip("$").replace("\\", "")
            yield "/" + prefix + route


def _linked_css(path: str) -> str:
    """The text of a style sheet of ours, by its URL (``/static/...``)."""
    name = urlsplit(path).path.removeprefix("/static/")
    found = finders.find(name)
    return open(found, encoding="utf-8", errors="replace").read() if found else ""


@pytest.fixture
def site(db, client):
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    ModelProfileFactory()
    image = ImageFactory(user=admin, is_public=True)
    lora = LoraFactory()
    client.force_login(admin)
    return {"client": client, "details": [f"/images/{image.pk}/", f"/loras/{lora.pk}/",
                                          f"/admin/images/image/{image.pk}/change/"]}


def test_no_page_loads_anything_from_another_origin(site):
    client = site["client"]
    paths = sorted(set(_static_paths(get_resolver().url_patterns))) + site["details"]
    must = {"/", "/gallery/", "/loras/", "/admin/", "/api/docs/", "/api/redoc/", "/api/"}
    assert must <= set(paths), must - set(paths)
    pages, offenders = [], []
    for path in paths:
        if SKIP.search(path):
            continue
        response = client.get(path, HTTP_ACCEPT="text/html")
        if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
            continue
        if getattr(response, "streaming", False):
            continue
        pages.append(path)
        parser = _Refs()
        parser.feed(response.content.decode("utf-8", errors="replace"))
        offenders += [(path, tag, attr, url) for tag, attr, url in parser.refs
                      if _is_external(url)]
        css = parser.css + [_linked_css(url) for tag, attr, url in parser.refs
                            if tag == "link" and url.split("?")[0].endswith(".css")]
        offenders += [(path, "css", "url", m) for text in css for m in CSS_EXTERNAL.findall(text)]
    # The walk really saw the pages people use (a broken login would leave only 302s).
    assert must - {"/api/"} <= set(pages), must - set(pages)
    assert set(site["details"]) <= set(pages)
    assert len(pages) > 20, pages
    assert offenders == [], offenders
    print(f"{len(pages)} HTML pages checked")


def test_the_rule_catches_what_it_should():
    parser = _Refs()
    parser.feed('<link rel="stylesheet" href="https://cdn.example.org/x.css">'
                '<script src="//cdn.example.org/x.js"></script>'
                '<img srcset="/a.png 1x, https://img.example.org/b.png 2x">'
                '<a href="https://civitai.com/models/1">Civitai</a>'
                '<style>@import url("https://fonts.example.org/f.css");</style>')
    external = [(tag, attr) for tag, attr, url in parser.refs if _is_external(url)]
    assert external == [("link", "href"), ("script", "src"), ("img", "srcset")]
    assert CSS_EXTERNAL.findall(" ".join(parser.css)) == ["https://fonts.example.org/f.css"]
    assert not _is_external("/static/app.css") and not _is_external("http://testserver/x")
