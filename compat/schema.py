"""OpenAPI for the compatibility APIs: their own tags, their own error bodies, their auth.

Each adapter answers errors in the shape its clients parse (A1111: ``{"error", "detail",
"body", "errors"}``; OpenAI: ``{"error": {"message", "type", "param", "code"}}``), so the
error responses :class:`core.schema.ApiAutoSchema` derives for an operation are documented
with that API's error component instead of the native ``Error``.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from core.schema import ERROR_DESCRIPTIONS, ApiAutoSchema


class A1111ErrorSerializer(serializers.Serializer):
    """An error of the A1111 API, in the shape of A1111's exception handler
    (``modules/api/api.py`` ``handle_exception``), plus Atelier's ``code`` and ``fields``."""

    error = serializers.CharField(help_text="The kind of error, e.g. `HTTPException`.")
    detail = serializers.CharField(help_text="What went wrong, for a person.")
    body = serializers.CharField(allow_blank=True)
    errors = serializers.CharField(allow_blank=True)
    code = serializers.CharField(help_text="Atelier's error code, e.g. `invalid`.")
    fields = serializers.JSONField(required=False)

    class Meta:
        ref_name = "A1111Error"


class _OpenAIErrorBody(serializers.Serializer):
    message = serializers.CharField()
    type = serializers.CharField(help_text="`invalid_request_error`, `authentication_error`, "
                                           "`rate_limit_error` or `server_error`.")
    param = serializers.CharField(allow_null=True)
    code = serializers.CharField(allow_null=True)

    class Meta:
        ref_name = "OpenAIErrorBody"


class OpenAIErrorSerializer(serializers.Serializer):
    """An error of the OpenAI API: ``{"error": {"message", "type", "param", "code"}}``."""

    error = _OpenAIErrorBody()

    class Meta:
        ref_name = "OpenAIError"


class _CompatAutoSchema(ApiAutoSchema):
    tag = ""
    error_serializer: type[serializers.Serializer] = A1111ErrorSerializer

    def get_tags(self):
        return [self.tag]

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        responses = operation.get("responses", {})
        for status in list(responses):
            if not status.isdigit() or int(status) not in ERROR_DESCRIPTIONS:
                continue
            headers = responses[status].get("headers")
            responses[status] = self._get_response_for_code(
                OpenApiResponse(self.error_serializer, description=ERROR_DESCRIPTIONS[int(status)]),
                status, media_types=["application/json"])
            if headers:
                responses[status]["headers"] = headers
        return operation


class A1111AutoSchema(_CompatAutoSchema):
    """Operations of ``/sdapi/v1/``: tag "A1111 API", A1111 error bodies."""

    tag = "A1111 API"


class OpenAIAutoSchema(_CompatAutoSchema):
    """Operations of ``/v1/``: tag "OpenAI Images API", OpenAI error bodies."""

    tag = "OpenAI Images API"
    error_serializer = OpenAIErrorSerializer


class CompatBasicScheme(OpenApiAuthenticationExtension):
    """HTTP Basic with username + password or API token; ``Bearer``/``Token`` work too."""

    target_class = "compat.auth.CompatAuthentication"
    name = "a1111Basic"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "basic",
                "description": "Username and password, or username and API token "
                               "(`Bearer <token>` and `Token <token>` are accepted too)."}


class CompatBearerScheme(OpenApiAuthenticationExtension):
    """``Authorization: Bearer <API token>`` (the OpenAI SDK's ``api_key``)."""

    target_class = "compat.auth.BearerAuthentication"
    name = "openaiBearer"
    match_subclasses = True

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "The API token of `POST /api/auth/token/` as the `api_key`."}
