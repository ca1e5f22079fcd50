"""Workflow refusals of the review pipeline (domain errors; the API maps them to the contract's codes)."""

from __future__ import annotations

from hitl_portal.errors import Conflict, Forbidden


class ClaimConflict(Conflict):
    """409: the reviewer holds no live claim on the case (or the case moved on)."""

    def __init__(self, detail: str, code: str = "no_live_claim") -> None:
        super().__init__(detail, code=code)


class ReviewerNotAllowed(Forbidden):
    """403 ``reviewer_suspended`` / ``not_qualified``: the reviewer may not claim at all."""


class CaseConflict(Conflict):
    """409 on ingestion: ``duplicate`` (with the existing id) or ``system_prohibited``."""
