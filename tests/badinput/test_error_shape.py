"""Every API error keeps the ``{"code", "message"}`` shape: Django model validation errors are
400, an unexpected exception is a logged 500 ``internal_error`` (never an HTML page)."""

import logging

import pytest
from django.core.exceptions import ValidationError as DjangoValidationError

from core.exceptions import api_exception_handler


def test_unexpected_exception_is_json_500_and_logged(caplog):
    try:
        raise RuntimeError("boom")
    except RuntimeError as exc:
        with caplog.at_level(logging.ERROR, logger="core.exceptions"):
            response = api_exception_handler(exc, {"view": None})
    assert response.status_code == 500
    assert response.data == {"code": "internal_error",
                             "message": "An unexpected error occurred; it has been logged."}
    assert "boom" not in str(response.data)  # no internals leak to the client
    assert any(r.exc_info and r.exc_info[0] is RuntimeError for r in caplog.records)


def test_django_validation_error_is_400():
    response = api_exception_handler(DjangoValidationError("“x” is not a valid UUID."),
                                     {"view": None})
    assert response.status_code == 400
    assert response.data["code"] == "invalid" and "UUID" in response.data["message"]
    field = api_exception_handler(DjangoValidationError({"pk": ["Bad id."]}), {"view": None})
    assert field.status_code == 400 and field.data["fields"] == {"pk": ["Bad id."]}


def test_a_protected_delete_is_409_in_use():
    from django.db.models import ProtectedError

    response = api_exception_handler(ProtectedError("protected", set()), {"view": None})
    assert response.status_code == 409
    assert response.data["code"] == "in_use" and response.data["message"]


def test_malformed_job_id_in_the_url_is_404(api_client):
    r = api_client.get("/api/jobs/not-a-uuid/")
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    assert api_client.post("/api/jobs/null,null/cancel/").status_code == 404


def test_ids_beyond_64_bits_are_400_not_a_database_overflow(api_client):
    huge = 2**70
    for url, body in (("/api/loras/bulk-move/", {"ids": [huge], "folder": "x"}),
                      ("/api/loras/bulk-move/", {"ids": [1], "folder": "x", "root": huge}),
                      ("/api/loras/bulk-delete/", {"ids": [huge]}),
                      ("/api/downloads/", {"model_version_id": huge}),
                      ("/api/loras/civitai/refresh-all/", {"lora_ids": [huge]})):
        r = api_client.post(url, body, format="json")
        assert r.status_code == 400 and r.json()["code"] == "invalid", (url, body, r.content)


def test_too_many_form_fields_is_400(api_client, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    body = "&".join(f"ids={i}" for i in range(1, 30))
    r = api_client.post("/api/loras/bulk-delete/", body,
                        content_type="application/x-www-form-urlencoded")
    assert r.status_code == 400 and r.json()["code"] == "bad_request", r.content


def test_too_big_body_is_413(api_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    r = api_client.post("/api/generate/", {"prompt": "x" * 1000}, format="json")
    assert r.status_code == 413 and r.json()["code"] == "request_too_large", r.content


@pytest.mark.django_db
@pytest.mark.parametrize("url", [
    "/api/loras/?root=-6.337070095223595e%2B128",
    "/api/loras/?nsfw_max=1e300",
    "/api/images/?project=-1.858014376688812e%2B120",
    "/api/user-images/?project=1e40",
])
def test_huge_numbers_in_filters_are_400_not_an_overflow(api_client, url):
    response = api_client.get(url)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid"


def test_every_operation_documents_its_error_answers():
    """The schema names the Error body for 401 everywhere, 400 wherever input is read, 404
    wherever a path names an object, and the statuses views declare (409 for a used profile)."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    error_ref = {"$ref": "#/components/schemas/Error"}
    assert set(schema["components"]["schemas"]["Error"]["required"]) == {"code", "message"}
    operations = [(path, method, op) for path, item in schema["paths"].items()
                  for method, op in item.items()]
    assert len(operations) > 90
    # The compatibility APIs answer in their own clients' shapes (compat/schema.py).
    own_shape = {"/sdapi/": {"$ref": "#/components/schemas/A1111Error"},
                 "/v1/": {"$ref": "#/components/schemas/OpenAIError"}}
    for path, method, op in operations:
        responses = op["responses"]
        expected = next((ref for prefix, ref in own_shape.items() if path.startswith(prefix)),
                        error_ref)
        if path == "/v1/images/files/{token}":  # a signed URL: no credentials, 404 when bad
            assert "404" in responses
            continue
        assert responses["401"]["content"]["application/json"]["schema"] == expected, path
        if "{" in path:
            assert "404" in responses, (method, path)
        if "requestBody" in op or method != "get":
            assert "400" in responses, (method, path)
    assert "409" in schema["paths"]["/api/model-profiles/{slug}/"]["delete"]["responses"]
    assert "409" not in schema["paths"]["/api/model-profiles/{slug}/"]["get"]["responses"]
    throttled = schema["paths"]["/api/generate/"]["post"]["responses"]["429"]
    assert "Retry-After" in throttled["headers"]
