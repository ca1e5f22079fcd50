"""Domain errors: what a service refuses, and why, with no knowledge of HTTP.

Services raise these (or Django's ``ValidationError`` for bad field values); the
one place that turns them into responses is ``hitl_portal.api.exceptions`` (the
API: status code + ``{code, detail}`` JSON) and, for pages, the views that show
``detail`` as a message. Each carries a machine-readable ``code_name`` from the
contract (e.g. ``reviewer_suspended``, ``duplicate``) and optional extra fields
for the body (e.g. the existing case's ``id``).
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refusal of the domain. ``status`` is the HTTP status the API maps it to."""

    status = 400
    default_code = "error"
    default_detail = "Refused."

    def __init__(self, detail: str | None = None, code: str | None = None, **extra: Any) -> None:
        self.detail = detail if detail is not None else self.default_detail
        self.code_name = code or self.default_code
        self.extra = extra
        super().__init__(self.detail)

    def __str__(self) -> str:
        return str(self.detail)


class Forbidden(DomainError):
    """403: the actor may not do this at all (e.g. ``reviewer_suspended``, ``not_qualified``, ``not_linked``)."""

    status = 403
    default_code = "forbidden"
    default_detail = "You may not do this."


class Conflict(DomainError):
    """409: the state moved on or already exists (e.g. ``no_live_claim``, ``duplicate``)."""

    status = 409
    default_code = "conflict"
    default_detail = "Conflict."


class Unprocessable(DomainError):
    """422: well-formed, but contradicts what was already accepted (e.g. a reused idempotency key)."""

    status = 422
    default_code = "unprocessable"
    default_detail = "Unprocessable request."
