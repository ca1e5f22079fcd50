"""Which cases a user may see: the one place that decides it.

The cases API, the queue and decision endpoints and the pages all filter through
``cases_visible_to``; nothing else grants access to a case.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from hitl_portal.roles import ADMIN, COMPLIANCE_OFFICER, INTEGRATION, MANAGER, REVIEWER, user_role
from reviews.models import AISystem, Case, CaseStatus, Decision

# Oversight roles read every case (Art. 26: the deployer monitors the whole system).
_SEE_ALL = frozenset((ADMIN, COMPLIANCE_OFFICER, MANAGER))


def cases_visible_to(user: Any, *, queryset: QuerySet[Case] | None = None) -> QuerySet[Case]:
    """The cases ``user`` may read (narrowing ``queryset`` when given, e.g. one with prefetches).

    - compliance officers, managers, admins: every case;
    - an integration: the cases of the systems it is linked to;
    - a reviewer: a case they hold a live claim on, or one they decided (in any round);
    - anyone else (or nobody): none.
    Subqueries rather than joins, so no case is listed twice.
    """
    role = user_role(user)
    cases = Case.objects.all() if queryset is None else queryset
    if role in _SEE_ALL:
        return cases
    if role == INTEGRATION:
        # Gold items are the portal's own test cases, never an integration's.
        return cases.filter(
            is_gold=False, system__in=AISystem.objects.filter(integrations__user=user).values("pk")
        )
    if role == REVIEWER:
        held = Q(status=CaseStatus.CLAIMED, claimed_by=user, lease_expires_at__gt=timezone.now())
        decided = Q(pk__in=Decision.objects.filter(reviewer=user).values("case_id"))
        return cases.filter(held | decided)
    return cases.none()
