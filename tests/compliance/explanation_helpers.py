"""Test data for the Art. 86 channel: a decided case with a reference, and the people around it."""

from __future__ import annotations

from typing import Any

from django.core.cache import cache

from reviews.models import Case, InterventionPoint, ReviewerProfile
from reviews.services.decisions import decision_record
from reviews.services.queue import claim_next
from tests.reviews.workbench_helpers import make_point, make_queued_case

SYSTEM = "credit-scoring"


def clear_rate_limits() -> None:
    """The public page's counters live in the cache (Redis in CI): each test starts with fresh budgets."""
    cache.clear()


def decided_case(make_user: Any, *, external_id: str = "loan-0042", reviewer_name: str = "rev-first",
                 outcome: str = "override", label: str | None = "reject",
                 rationale: str = "The payslip names another employer than the application form.") -> Case:
    """A routed case decided by one reviewer (returns the case, fresh from the database)."""
    point = InterventionPoint.objects.filter(system__slug=SYSTEM, slug="loan-review").first() or make_point()
    case = make_queued_case(point, external_id=external_id)
    first = make_user("reviewer", reviewer_name, systems=[SYSTEM])
    claimed = claim_next(reviewer=first)
    assert claimed is not None and claimed.pk == case.pk
    decision_record(reviewer=first, case=claimed, outcome=outcome, label=label if outcome == "override" else None,
                    rationale=rationale)
    return Case.objects.get(pk=case.pk)


def adjudicator(make_user: Any, name: str) -> Any:
    user = make_user("reviewer", name, systems=[SYSTEM])
    ReviewerProfile.objects.filter(user=user).update(adjudicator=True)
    return user
