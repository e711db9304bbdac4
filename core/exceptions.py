"""One application error type, mapped once to HTTP by :func:`api_exception_handler`.

Every error body is ``{"code": str, "message": str, "fields"?: {name: [messages]}}``.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

log = logging.getLogger(__name__)


class ApplicationError(Exception):
    """A rule violation a service reports to its caller.

    Args:
        code: machine-readable reason (``"unknown_model"``).
        message: one sentence for a person.
        status: HTTP status the API answers with (400 by default; 404, 409, 429, 503 ...).
        fields: optional per-field messages ``{"width": ["..."]}``.
    """

    def __init__(self, code: str, message: str, *, status: int = 400, fields: dict | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.fields = fields


def _flatten(detail) -> dict:
    if isinstance(detail, dict):
        return {
            key: [str(m) for m in (value if isinstance(value, list) else [value])]
            if not isinstance(value, dict) else _flatten(value)
            for key, value in detail.items()
        }
    messages = detail if isinstance(detail, list) else [detail]
    return {"non_field_errors": [str(m) for m in messages]}


def _first_leaf(fields, prefix: str = "") -> tuple[str, str]:
    """The dotted path and text of the first message in nested field errors."""
    for key, value in fields.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            return _first_leaf(value, path)
        if value:
            return path, str(value[0])
    return prefix, "Invalid input."


def api_exception_handler(exc, context):
    """DRF exception handler producing ``{"code", "message", "fields"?}`` for every error,
    unexpected exceptions included (500 ``internal_error``, traceback logged). A delete that
    ``on_delete=PROTECT`` rows prevent is 409 ``in_use``."""
    if isinstance(exc, ApplicationError):
        body = {"code": exc.code, "message": exc.message}
        if exc.fields:
            body["fields"] = exc.fields
        return Response(body, status=exc.status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        return Response({"code": "request_too_large", "message": str(exc)}, status=413)
    elif isinstance(exc, (ProtectedError, RestrictedError)):
        # A delete that rows still referring to the object prevent (on_delete=PROTECT): the
        # client's conflict, not a crash. Views that know the case answer a precise code.
        return Response({"code": "in_use", "message": "It is still in use by other objects and "
                                                      "cannot be deleted."}, status=409)
    elif isinstance(exc, SuspiciousOperation):
        # Too many form fields, a bad Host...: Django itself answers these with 400.
        return Response({"code": "bad_request", "message": str(exc)}, status=400)
    elif isinstance(exc, DjangoValidationError):
        # A model/ORM value check (e.g. a malformed UUID in a lookup) is the client's input.
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    response = exception_handler(exc, context)
    if response is None:
        # A bug: keep the API's error shape (clients parse JSON) and log the traceback.
        view = context.get("view")
        log.error("unhandled %s in %s", type(exc).__name__, type(view).__name__ if view else "?",
                  exc_info=(type(exc), exc, exc.__traceback__))
        return Response({"code": "internal_error",
                         "message": "An unexpected error occurred; it has been logged."},
                        status=status.HTTP_500_INTERNAL_SERVER_ERROR)
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        path, message = _first_leaf(fields)
        if path and path != "non_field_errors":
            message = f"{path}: {message}"
        response.data = {"code": "invalid", "message": message, "fields": fields}
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        code = getattr(exc, "default_code", "error")
        if isinstance(detail, (list, dict)):
            message = str(detail)
        else:
            code = getattr(detail, "code", None) or code
            message = str(detail)
        response.data = {"code": code, "message": message}
    if response.status_code == status.HTTP_429_TOO_MANY_REQUESTS and "Retry-After" not in response:
        wait = getattr(exc, "wait", None)
        if wait:
            response["Retry-After"] = str(int(wait) + 1)
    return response
