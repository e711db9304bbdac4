"""OpenAPI schema: every operation documents the error answers it can give, and request bodies
are documented in the formats the API reads strictly.

Every API error has one body, the ``Error`` component ``{"code", "message", "fields"?}``
(:mod:`core.exceptions`). :class:`ApiAutoSchema` (``DEFAULT_SCHEMA_CLASS``) adds to each
operation the statuses the framework itself can answer, derived from the operation:

- 400: an operation with a request body or query parameters (validation, filters);
- 401: every operation (a missing or bad ``Authorization: Token`` is refused everywhere, also
  where anonymous reads are allowed);
- 403: every unsafe method (staff-only writes, CSRF of session requests), and safe methods
  whose permission classes may refuse a signed-in user;
- 404: an operation with path parameters (an unknown id, or an object you may not see) or a
  paginated list (a page past the end);
- 413: an operation with a request body (``DATA_UPLOAD_MAX_MEMORY_SIZE``, body caps);
- 429: an operation that a throttle counts (``Retry-After`` gives the seconds to wait);

and what a view declares with :func:`api_errors` (409, 503, or a 400/404 raised by a service
on an operation the rules above miss).

Request bodies are documented as ``application/json``, plus ``multipart/form-data`` where a
file is sent. The views still read form bodies (the browsable API posts them), but DRF reads
those leniently by design: an omitted boolean is ``false``, an empty optional string counts as
omitted, and a nested list that is not spelled ``loras[0]lora=`` is dropped. The schema
documents the formats whose every rule is enforced.
"""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import force_instance
from drf_spectacular.utils import OpenApiResponse, extend_schema_field
from rest_framework import permissions, serializers

#: What each error status means in this API (the ``description`` of its response).
ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Invalid input: `code` says why; `invalid` lists the offending fields in `fields`.",
    401: "Not signed in, or a bad token (`not_authenticated`, `authentication_failed`).",
    403: "Signed in but not allowed (`permission_denied`: staff only, CSRF of a session "
         "request).",
    404: "No such object, or not one you may see (`not_found`); or a page past the end.",
    409: "Conflicts with the current state (e.g. `job_running`, `download_running`, "
         "`profile_in_use`, `exists`).",
    413: "The request body is larger than allowed (`request_too_large`).",
    429: "Too many requests (`throttled`, `locked_out`); `Retry-After` gives the seconds to "
         "wait.",
    503: "A dependency is unavailable (`provider_unavailable`, `broker_unavailable`, "
         "`civitai_unavailable`): configure it or try again later.",
}
ERROR_STATUSES = frozenset(ERROR_DESCRIPTIONS)
_ATTRIBUTE = "_api_errors"
_PER_ACTION = "_api_errors_per_action"


@extend_schema_field({
    "type": "object",
    "description": "Messages per field: a list of strings, or an object of the same shape for "
                   "a nested field (list items by index).",
    "additionalProperties": {"anyOf": [{"type": "array", "items": {"type": "string"}},
                                       {"type": "object"}]},
})
class _FieldErrorsField(serializers.JSONField):
    pass


class ErrorSerializer(serializers.Serializer):
    """The body of every error answer: a stable `code`, a `message` for a person and, for
    invalid input, the messages per field."""

    code = serializers.CharField(help_text="Machine-readable reason, e.g. `invalid`, "
                                           "`not_found`, `job_running`.")
    message = serializers.CharField(help_text="One sentence for a person.")
    fields = _FieldErrorsField(required=False)

    class Meta:
        ref_name = "Error"


def api_errors(*statuses: int, actions: tuple[str, ...] = ()):
    """Declare error statuses a view answers beyond those :class:`ApiAutoSchema` derives.

    On a view method, a ViewSet action or a whole view class: ``@api_errors(409, 503)``. On a
    ViewSet class, ``actions`` limits them to those actions (for inherited ones such as
    ``destroy``): ``@api_errors(409, actions=("destroy",))``.

    Raises:
        ValueError: a status that is not one of :data:`ERROR_STATUSES`.
    """
    unknown = set(statuses) - ERROR_STATUSES
    if unknown:
        raise ValueError(f"api_errors: no description for {sorted(unknown)}")

    def decorate(target):
        if actions:
            per_action = dict(getattr(target, _PER_ACTION, {}))
            for name in actions:
                per_action[name] = per_action.get(name, frozenset()) | set(statuses)
            setattr(target, _PER_ACTION, per_action)
        else:
            setattr(target, _ATTRIBUTE,
                    frozenset(getattr(target, _ATTRIBUTE, ())) | set(statuses))
        return target

    return decorate


class ApiAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema plus the error responses of each operation and the request
    body formats (module doc)."""

    def map_parsers(self):
        media_types = super().map_parsers()
        if "application/json" not in media_types:
            return media_types
        keep = {"application/json"} | ({"multipart/form-data"} if self._sends_files() else set())
        return [media_type for media_type in media_types if media_type in keep]

    def _sends_files(self) -> bool:
        serializer = force_instance(self.get_request_serializer())
        fields = getattr(serializer, "fields", None) or {}
        return any(isinstance(getattr(field, "child", field), serializers.FileField)
                   for field in fields.values())

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        responses = operation.setdefault("responses", {})
        for status in sorted(self._error_statuses(operation)):
            if str(status) in responses:
                continue
            response = self._get_response_for_code(
                OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS[status]),
                str(status), media_types=["application/json"])
            if status == 429:
                response["headers"] = {"Retry-After": {
                    "schema": {"type": "integer", "minimum": 0},
                    "description": "Seconds to wait before trying again."}}
            responses[str(status)] = response
        return operation

    # ------------------------------------------------------------------ derivation
    def _declared(self) -> set[int]:
        action = getattr(self.view, "action", None) or ""
        handler = getattr(self.view, action, None) or getattr(self.view, self.method.lower(), None)
        return (set(getattr(handler, _ATTRIBUTE, ())) | set(getattr(self.view, _ATTRIBUTE, ()))
                | set(getattr(self.view, _PER_ACTION, {}).get(action, ())))

    def _error_statuses(self, operation: dict) -> set[int]:
        parameters = operation.get("parameters", [])
        where = {p.get("in") for p in parameters}
        paginated = any(p.get("in") == "query" and p.get("name") == "page" for p in parameters)
        body = "requestBody" in operation
        safe = self.method in permissions.SAFE_METHODS
        statuses = {401} | self._declared()
        if body or "query" in where or not safe:
            statuses.add(400)
        if not safe or self._may_refuse_signed_in():
            statuses.add(403)
        if "path" in where or paginated:
            statuses.add(404)
        if body:
            statuses.add(413)
        if self._throttled():
            statuses.add(429)
        return statuses

    def _may_refuse_signed_in(self) -> bool:
        """Whether a permission class of the view may refuse a signed-in user on a safe method:
        anything but AllowAny / IsAuthenticated / IsAuthenticatedOrReadOnly (and classes that
        declare ``refuses_signed_in_reads = False``)."""
        lenient = (permissions.AllowAny, permissions.IsAuthenticated,
                   permissions.IsAuthenticatedOrReadOnly)
        for permission in self.view.get_permissions():
            if isinstance(permission, lenient):
                continue
            if getattr(permission, "refuses_signed_in_reads", True):
                return True
        return False

    def _throttled(self) -> bool:
        """Whether a throttle of the view can refuse this operation: a cost throttle only counts
        unsafe methods of a view with a ``throttle_scope`` (core.throttling); any other
        throttle (login) counts every request."""
        from .throttling import CostRateThrottle

        safe = self.method in permissions.SAFE_METHODS
        for throttle in self.view.get_throttles():
            if not isinstance(throttle, CostRateThrottle):
                return True
            if not safe and (getattr(self.view, "throttle_scope", None) or throttle.scope):
                return True
        return False
