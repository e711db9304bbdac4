"""The OpenAPI schema builds without warnings and documents the main endpoints."""

import pytest
from django.core.management import call_command


def test_schema_generates_cleanly(tmp_path, capsys):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    for path in ("/api/generate/", "/api/status/{id}/", "/api/jobs/{id}/cancel/",
                 "/api/auth/token/", "/api/images/"):
        assert f"{path}:" in text


@pytest.mark.django_db
def test_docs_and_browsable_api_are_served(api_client, client, user):
    assert client.get("/api/docs/").status_code == 200
    client.force_login(user)
    root = client.get("/api/", HTTP_ACCEPT="text/html")
    assert root.status_code == 200 and b"jobs" in root.content
