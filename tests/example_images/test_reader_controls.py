"""A reader (no ``loras.manage_library``) sees the example images but not the controls that
would answer 403 (import, download, generate, delete, set preview); a manager sees them."""

import pytest
from django.test import Client

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _section(user, lora) -> str:
    client = Client()
    client.force_login(user)
    html = client.get(f"/loras/{lora.pk}/").content.decode()
    start = html.index('id="examples"')
    return html[start - 200:start + 4000]


def test_reader_gets_the_section_without_write_controls(make_lora, user):
    lora = make_lora("style")
    reader = _section(UserFactory(username="bob"), lora)
    manager = _section(user, lora)
    assert 'data-can-manage="0"' in reader and 'data-can-manage="1"' in manager
    for marker in ('class="button manage-only" for="ex-file"', 'id="ex-force" class="manage-only"',
                   'class="ex-generate manage-only"'):
        assert marker in reader and marker in manager  # present, hidden by the CSS rule below


def test_the_css_hides_manage_only_controls_for_readers():
    from pathlib import Path

    css = (Path(__file__).resolve().parents[2] / "static" / "example_images.css").read_text()
    rule = css[css.index('.examples[data-can-manage="0"] .manage-only'):]
    assert "display: none" in rule.split("}")[0]
    for cls in (".ex-set-preview", ".ex-delete"):
        assert f'[data-can-manage="0"] {cls}' in rule.split("}")[0]
