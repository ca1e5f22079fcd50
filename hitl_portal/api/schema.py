"""OpenAPI pieces every API view documents: the error bodies of the contract.

Raw schemas, not serializers: no shared component names to collide with other
apps' schemas.
"""

from __future__ import annotations

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
