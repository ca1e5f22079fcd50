"""The review pipeline's rules that more than one service applies, each written once.

Pure functions of facts already read: the claim queue applies them to rows it
aggregated in SQL, the decision service to the one locked case it holds, so the
two can never disagree about when a case stands escalated or who may review it.
"""

from __future__ import annotations

from reviews.models import ReviewerStatus
from reviews.services.errors import ReviewerNotAllowed


def is_escalated(
    *, review_round: int, sla_breached: bool, decisions: int, distinct_labels: int, escalations: int,
    reviewers_required: int,
) -> bool:
    """Whether an open case stands escalated, derived from facts rather than stored.

    Reopened (a later round) or breached its SLA while open (the breach rule
    escalated it; the other rules close it); else, in the current round, a reviewer
    escalated, the verdicts differ (labels compared as ``COUNT(DISTINCT label)``
    does, without nulls), or as many as required were given without closing it
    (they disagreed).
    """
    if review_round > 1 or sla_breached:
        return True
    return bool(escalations) or distinct_labels > 1 or (decisions > 0 and decisions >= reviewers_required)


def require_standing(*, status: str | None, user_active: bool, qualified: bool) -> None:
    """A reviewer may claim, renew or decide only while active and qualified for the case's system.

    ``status`` is the reviewer profile's status (None: no profile). Raises
    ``ReviewerNotAllowed`` (403 ``not_qualified`` / ``reviewer_suspended``).
    """
    if status is None or not qualified:
        raise ReviewerNotAllowed("You are not qualified for this AI system.", code="not_qualified")
    if not (status == ReviewerStatus.ACTIVE and user_active):
        raise ReviewerNotAllowed("Your reviewer account is suspended.", code="reviewer_suspended")
