"""OpenAPI pieces every API view documents: the error bodies of the contract.

Raw schemas, not serializers: no shared component names to collide with other
apps' schemas.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse

ERROR_BODY = {
    "type": "object",
    "properties": {"code": {"type": "string"}, "detail": {"type": "string"}},
    "required": ["code", "detail"],
}
FIELD_ERRORS_BODY = {
    "type": "object",
    "description": "Each offending field (dotted for nested input, or non_field_errors) → its messages.",
    "additionalProperties": {},
}
BAD_INPUT = OpenApiResponse(FIELD_ERRORS_BODY, description="Invalid input; the body names the field(s).")
UNAUTHENTICATED = OpenApiResponse(ERROR_BODY, description="No or invalid credentials (code not_authenticated).")
FORBIDDEN = OpenApiResponse(ERROR_BODY, description="The role may not do this (code forbidden).")
NOT_FOUND = OpenApiResponse(ERROR_BODY, description="No such object (code not_found).")


def _json_response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def document_shared_errors(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: every API operation documents the errors any of them can give.

    The shared layers answer these for every operation alike (the exception handler,
    the body-size middleware, the throttles, the NUL and cursor checks, a lost database
    connection), so each operation lists them unless its view documents its own:
    400 always (a NUL byte in any query parameter is refused), 401/403 when it needs credentials, 404 when its path
    names an object, 411/413/415 when it takes a body, 429 and 503 always.
    """
    for path, item in result.get("paths", {}).items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            parameters = operation.get("parameters", [])
            has_body = "requestBody" in operation
            shared: dict[str, dict[str, Any]] = {}
            # Any query string can be refused (a NUL byte in any parameter), so 400 is always possible.
            shared["400"] = _json_response(
                "Invalid input; the body names the field(s) or parameter(s).", FIELD_ERRORS_BODY
            )
            if operation.get("security", [{"auth": []}]) not in ([], [{}]):
                shared["401"] = _json_response("No or invalid credentials (code not_authenticated).", ERROR_BODY)
                shared["403"] = _json_response("The role may not do this (code forbidden).", ERROR_BODY)
            if any(parameter.get("in") == "path" for parameter in parameters):
                shared["404"] = _json_response("No such object (code not_found).", ERROR_BODY)
            if has_body:
                shared["411"] = _json_response(
                    "A chunked body this server cannot read; send Content-Length (code length_required).", ERROR_BODY
                )
                shared["413"] = _json_response("The body is larger than HITL_MAX_BODY_BYTES (code body_too_large).",
                                               ERROR_BODY)
                shared["415"] = _json_response("Unsupported Content-Type (code unsupported_media_type).", ERROR_BODY)
            shared["429"] = _json_response("Too many requests (code throttled).", ERROR_BODY)
            shared["503"] = _json_response(
                "The database is unavailable; retry after the Retry-After seconds (code database_unavailable).",
                ERROR_BODY,
            )
            for status, response in shared.items():
                responses.setdefault(status, response)
    return result


def paginated(name: str, items: Any) -> Any:
    """The documented body of a cursor-paginated list: ``{next, previous, results: [items]}``.

    For list views that paginate by hand (an ``APIView``): drf-spectacular wraps only
    generic list actions itself.
    """
    from drf_spectacular.utils import inline_serializer
    from rest_framework import serializers

    return inline_serializer(name, {
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": items,
    })
