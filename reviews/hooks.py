"""Extension points of the claim queue, filled in by the floors above ``reviews``.

The queue lives here, but two of its rules belong to the quality app, which is a
floor higher and builds on this one: competence (a reviewer whose required
training expired or whose gold accuracy fell is suspended at claim time) and gold
items (mixed into each reviewer's queue as per-reviewer copies). So that
``reviews`` never imports ``quality``, quality registers those rules here in its
``AppConfig.ready()``. Without a registration the queue still fails closed: no
gate means no extra refusal, but gold cases are never claimable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from reviews.models import Case, ReviewerProfile
    from reviews.services.queue import ReviewerScope

# Called with the reviewer's profile before a claim; raises ``ReviewerNotAllowed`` to refuse it.
ClaimGate = Callable[["ReviewerProfile"], None]
# Called with the scope of a claim; returns a case to serve before the ordinary queue, or None.
ClaimServer = Callable[..., "Case | None"]
# Called with a reviewer id; returns the ids (a values() queryset) of gold cases served to that reviewer.
OwnGoldCases = Callable[[int], "QuerySet[Any]"]

_claim_gates: list[ClaimGate] = []
_claim_servers: list[ClaimServer] = []
_own_gold_cases: list[OwnGoldCases] = []


def register_claim_gate(gate: ClaimGate) -> None:
    if gate not in _claim_gates:
        _claim_gates.append(gate)


def register_claim_server(server: ClaimServer) -> None:
    if server not in _claim_servers:
        _claim_servers.append(server)


def register_own_gold_cases(provider: OwnGoldCases) -> None:
    if provider not in _own_gold_cases:
        _own_gold_cases.append(provider)


def check_claim_gates(profile: ReviewerProfile) -> None:
    """Run every registered gate (each may suspend the reviewer and raise ``ReviewerNotAllowed``)."""
    for gate in _claim_gates:
        gate(profile)


def serve_before_queue(scope: ReviewerScope, *, system_id: int | None, point_id: int | None) -> Case | None:
    """The first case a registered server hands this reviewer ahead of the queue (gold), or None."""
    for server in _claim_servers:
        case = server(scope=scope, system_id=system_id, point_id=point_id)
        if case is not None:
            return case
    return None


def own_gold_case_ids(reviewer_id: int) -> list[QuerySet[Any]]:
    """Subqueries of the gold copies served to this reviewer (empty: gold is claimable by nobody)."""
    return [provider(reviewer_id) for provider in _own_gold_cases]
