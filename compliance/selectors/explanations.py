"""Reads of the Art. 86 channel: reference checks, the officers' list, KPIs, the letter's facts."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from compliance.models import CaseReference, ExplanationRequest, ExplanationStatus
from hitl_portal.roles import COMPLIANCE_OFFICER
from reviews.models import Case

User = get_user_model()

OPEN_STATUSES = (ExplanationStatus.RECEIVED, ExplanationStatus.CONTESTED)
# Compared against when the reference is unknown, so both failures cost the same time.
_DUMMY_HASH = "0" * 64


def code_hash(code: str) -> str:
    """Keyed hash of a verification code (HMAC-SHA256 with the site's secret): a leaked table reveals no code."""
    normalised = "".join(code.split()).upper().replace("-", "")
    return hmac.new(settings.SECRET_KEY.encode(), f"art86:{normalised}".encode(), hashlib.sha256).hexdigest()


def reference_case(*, system_slug: str, external_id: str, code: str) -> Case | None:
    """The case this reference names when ``code`` is right; ``None`` for an unknown reference or a wrong code.

    The two failures are indistinguishable to the caller and cost the same work
    (one hash, one constant-time comparison).
    """
    reference = (
        CaseReference.objects.select_related("case", "case__system")
        .filter(case__system__slug=system_slug.strip(), case__external_id=external_id.strip(), case__is_gold=False)
        .first()
    )
    candidate = code_hash(code)
    stored = reference.code_hash if reference is not None else _DUMMY_HASH
    matches = hmac.compare_digest(candidate, stored)
    return reference.case if reference is not None and matches else None


def explanation_requests(*, status: str | None = None, assignee: Any = None) -> QuerySet[ExplanationRequest]:
    """Requests for the officers, nearest deadline first."""
    rows = ExplanationRequest.objects.select_related("case", "case__system", "assignee").defer(
        "letter_pdf", "letter_html"
    )
    if status:
        rows = rows.filter(status=status)
    if assignee is not None:
        rows = rows.filter(assignee=assignee)
    return rows.order_by("deadline", "pk")


def explanation_get(pk: int) -> ExplanationRequest | None:
    return ExplanationRequest.objects.select_related("case", "case__system", "case__intervention_point",
                                                     "assignee", "answered_by").filter(pk=pk).first()


def open_request_for_case(case: Case) -> ExplanationRequest | None:
    return ExplanationRequest.objects.filter(case=case, status__in=OPEN_STATUSES).order_by("pk").first()


def latest_request_for_case(case: Case) -> ExplanationRequest | None:
    return ExplanationRequest.objects.filter(case=case).order_by("-pk").first()


def active_officers() -> QuerySet[Any]:
    return User.objects.filter(is_active=True, groups__name=COMPLIANCE_OFFICER).distinct()


def least_loaded_officer() -> Any | None:
    """The active compliance officer with the fewest open requests (then by name, for a stable choice)."""
    officers = list(active_officers().order_by("username"))
    if not officers:
        return None
    loads = dict(
        ExplanationRequest.objects.filter(status__in=OPEN_STATUSES, assignee__in=officers)
        .values("assignee_id").annotate(n=Count("pk")).values_list("assignee_id", "n")
    )
    return min(officers, key=lambda officer: (loads.get(officer.pk, 0), officer.username))


@dataclass(frozen=True)
class ExplanationKpis:
    requests: int
    open: int
    overdue: int
    answered: int
    answered_in_time: int
    contested: int
    redecided: int
    overturned: int

    @property
    def in_time_rate(self) -> float | None:
        return self.answered_in_time / self.answered if self.answered else None

    @property
    def overturn_rate(self) -> float | None:
        """Overturned / contested cases decided again (a contest still under review counts in neither)."""
        return self.overturned / self.redecided if self.redecided else None


def explanation_kpis(*, system: Any = None, since: datetime | None = None) -> ExplanationKpis:
    """Requests, answered in time and the overturn rate of contests (for one system, or all)."""
    rows = ExplanationRequest.objects.all()
    if system is not None:
        rows = rows.filter(case__system=system)
    if since is not None:
        rows = rows.filter(received_at__gte=since)
    now = timezone.now()
    contested = rows.filter(contested_at__isnull=False)
    redecided = contested.filter(case__decided_at__gt=F("contested_at"), case__final_label__isnull=False)
    figures = rows.aggregate(
        requests=Count("pk"),
        open=Count("pk", filter=Q(status__in=OPEN_STATUSES)),
        overdue=Count("pk", filter=Q(answered_at__isnull=True, deadline__lt=now)
                      & ~Q(status=ExplanationStatus.CLOSED)),
        answered=Count("pk", filter=Q(answered_at__isnull=False)),
        answered_in_time=Count("pk", filter=Q(answered_at__isnull=False, answered_at__lte=F("deadline"))),
    )
    return ExplanationKpis(
        **figures,
        contested=contested.count(),
        redecided=redecided.count(),
        overturned=redecided.exclude(case__final_label=F("label_at_contest")).count(),
    )
