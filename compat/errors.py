"""Error answers in each compatibility API's own shape.

Both start from the native handler (:func:`core.exceptions.api_exception_handler`: every error,
unexpected ones included, becomes ``{"code", "message", "fields"?}`` with its status) and
reshape the body:

- A1111 (``modules/api/api.py`` ``handle_exception``): ``{"error": <exception type name>,
  "detail": <message>, "body": "", "errors": <text>}``; Atelier adds ``code`` and ``fields``.
  Bad input is 400 (A1111 itself answers 404 "Sampler not found" / 422 for some of it).
- OpenAI (API reference, "Error codes"): ``{"error": {"message", "type", "param", "code"}}``
  with the statuses the ``openai`` SDK maps to its exceptions: 400 ``BadRequestError``, 401
  ``AuthenticationError``, 403 ``PermissionDeniedError``, 404 ``NotFoundError``, 409
  ``ConflictError``, 429 ``RateLimitError``, 5xx ``InternalServerError``.
"""

from __future__ import annotations

from core.exceptions import api_exception_handler

_OPENAI_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                 403: "permission_error", 404: "invalid_request_error",
                 409: "invalid_request_error", 413: "invalid_request_error",
                 429: "rate_limit_error"}
_OPENAI_CODES = {"not_authenticated": "invalid_api_key", "authentication_failed": "invalid_api_key",
                 "throttled": "rate_limit_exceeded"}


def a1111_error_body(code: str, message: str, fields: dict | None = None) -> dict:
    """The A1111-shaped body of an error ``code`` with ``message`` (and per-field messages)."""
    body = {"error": "HTTPException", "detail": message, "body": "",
            "errors": str(fields) if fields else message, "code": code}
    if fields:
        body["fields"] = fields
    return body


def openai_error_body(code: str, message: str, status: int, fields: dict | None = None) -> dict:
    """The OpenAI-shaped body of an error: ``param`` is the first offending field, if any."""
    param = next(iter(fields), None) if fields else None
    return {"error": {"message": message,
                      "type": _OPENAI_TYPES.get(status, "server_error"),
                      "param": param if param != "non_field_errors" else None,
                      "code": _OPENAI_CODES.get(code, code)}}


def a1111_exception_handler(exc, context):
    """DRF exception handler of the A1111 views (see the module doc)."""
    response = api_exception_handler(exc, context)
    if response is not None:
        data = response.data or {}
        response.data = a1111_error_body(data.get("code", "error"), data.get("message", ""),
                                         data.get("fields"))
    return response


def openai_exception_handler(exc, context):
    """DRF exception handler of the OpenAI views (see the module doc)."""
    response = api_exception_handler(exc, context)
    if response is not None:
        data = response.data or {}
        response.data = openai_error_body(data.get("code", "error"), data.get("message", ""),
                                          response.status_code, data.get("fields"))
    return response
