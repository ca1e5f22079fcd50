"""Reads of the records kept around the ledger: legal holds in force, the Art. 12(3) biometric record."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db.models import Prefetch, Q, QuerySet

from records.models import BiometricUse, LegalHold
from reviews.models import Case, Decision

# --- Legal holds --------------------------------------------------------------------------


def active_legal_holds(*, system: Any = None) -> QuerySet[LegalHold]:
    """Holds in force for ``system`` (its own and the global ones); every active hold when None."""
    holds = LegalHold.objects.filter(released_at__isnull=True).select_related("system")
    if system is not None:
        holds = holds.filter(Q(system__isnull=True) | Q(system=system))
    return holds.order_by("placed_at", "id")


# --- Art. 12(3): remote biometric identification record ------------------------------------


def positive_label_of(system: Any) -> str | None:
    """The label that means "match": the system's positive label, else a label named ``match``."""
    if system.positive_label:
        return system.positive_label
    return "match" if "match" in (system.labels or []) else None


def biometric_uses(*, system: Any, start: dt.datetime | None = None, end: dt.datetime | None = None) -> QuerySet[
    BiometricUse
]:
    """Periods of use overlapping ``[start, end)``, earliest first."""
    uses = BiometricUse.objects.filter(system=system).select_related("started_by", "ended_by")
    if end is not None:
        uses = uses.filter(started_at__lt=end)
    if start is not None:
        uses = uses.filter(Q(ended_at__isnull=True) | Q(ended_at__gte=start))
    return uses.order_by("started_at", "id")


@dataclass(frozen=True)
class BiometricSearch:
    """One search (case) in the Art. 12(3) record."""

    case_id: int
    external_id: str
    received_at: dt.datetime
    decided_at: dt.datetime | None
    use_id: int | None
    reference_database: str | None
    ai_label: str | None
    final_label: str | None
    resolution: str | None
    ai_match: bool | None
    confirmed_match: bool | None
    input_hash: str
    input: dict[str, Any] | None
    input_purged: bool
    verifiers: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "case": self.case_id,
            "external_id": self.external_id,
            "received_at": self.received_at,
            "decided_at": self.decided_at,
            "use": self.use_id,
            "reference_database": self.reference_database,
            "ai_label": self.ai_label,
            "final_label": self.final_label,
            "resolution": self.resolution,
            "ai_match": self.ai_match,
            "confirmed_match": self.confirmed_match,
            "input_hash": self.input_hash,
            "input": self.input,
            "input_purged": self.input_purged,
            "verified_by": self.verifiers,
        }


def _use_for(uses: list[BiometricUse], at: dt.datetime) -> BiometricUse | None:
    """The period of use a search at ``at`` belongs to (the latest one started before it)."""
    found = None
    for use in uses:
        if use.started_at <= at and (use.ended_at is None or at <= use.ended_at):
            found = use
    return found


def biometric_searches(
    *,
    system: Any,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    matches_only: bool = False,
    include_input: bool = True,
    uses: list[BiometricUse] | None = None,
    chunk_size: int = 500,
) -> Iterator[BiometricSearch]:
    """The searches (cases) of ``system`` received in ``[start, end)``, oldest first, streamed.

    Each carries (Art. 12(3)) its period of use and reference database, the input
    that produced a match by case id and input hash (and the input itself while it
    is not purged, when ``include_input``), and the people who verified the result
    (every reviewer decision, in order, with its round). ``matches_only`` keeps the
    searches the AI or the final decision called a match.
    """
    positive = positive_label_of(system)
    uses = list(biometric_uses(system=system, start=start, end=end)) if uses is None else uses
    cases = Case.objects.filter(system=system)
    if start is not None:
        cases = cases.filter(received_at__gte=start)
    if end is not None:
        cases = cases.filter(received_at__lt=end)
    if matches_only and positive is not None:
        cases = cases.filter(Q(prediction_label=positive) | Q(final_label=positive))
    fields = ["id", "external_id", "received_at", "decided_at", "prediction_label", "final_label", "resolution",
              "input_hash", "payload_purged_at"]
    if include_input:
        fields.append("input")
    decisions = Prefetch(
        "decisions",
        queryset=Decision.objects.select_related("reviewer").order_by("round", "decided_at", "id"),
    )
    rows = cases.only(*fields).order_by("received_at", "id").prefetch_related(decisions).iterator(
        chunk_size=chunk_size
    )
    for case in rows:
        use = _use_for(uses, case.received_at)
        purged = case.payload_purged_at is not None
        yield BiometricSearch(
            case_id=case.pk,
            external_id=case.external_id,
            received_at=case.received_at,
            decided_at=case.decided_at,
            use_id=use.pk if use else None,
            reference_database=use.reference_database if use else None,
            ai_label=case.prediction_label,
            final_label=case.final_label,
            resolution=case.resolution,
            ai_match=None if positive is None or case.prediction_label is None else case.prediction_label == positive,
            confirmed_match=None if positive is None or case.final_label is None else case.final_label == positive,
            input_hash=case.input_hash,
            input=None if purged or not include_input else case.input,
            input_purged=purged,
            verifiers=[
                {
                    "reviewer": decision.reviewer.get_username(),
                    "name": decision.reviewer.get_full_name(),
                    "outcome": decision.outcome,
                    "label": decision.label,
                    "round": decision.round,
                    "adjudication": decision.is_adjudication,
                    "decided_at": decision.decided_at,
                }
                for decision in case.decisions.all()
            ],
        )


def biometric_use_summary(use: BiometricUse) -> dict[str, Any]:
    return {
        "id": use.pk,
        "started_at": use.started_at,
        "ended_at": use.ended_at,
        "reference_database": use.reference_database,
        "purpose": use.purpose,
        "authorisation_ref": use.authorisation_ref,
        "started_by": use.started_by.get_username() if use.started_by else None,
        "ended_by": use.ended_by.get_username() if use.ended_by else None,
    }


# --- Art. 14(5): the two-person rule's evidence ------------------------------------------------


@dataclass(frozen=True)
class TwoPersonEvidence:
    """How the two-person rule of Art. 14(5) held for a remote biometric identification system."""

    identifications: int  # cases routed as identification results (every result but the non-match label)
    decided: int  # of those, decided by people
    verified_by_two: int  # decided with at least two different reviewers' decisions
    disagreements: int  # the first two verifications differed (or one escalated)
    adjudications: int  # resolved by an adjudicator
    open: int  # still waiting for their verifications

    @property
    def held(self) -> bool:
        """Every decided identification was verified by at least two people."""
        return self.verified_by_two == self.decided

    @property
    def missing(self) -> int:
        """Decided identifications verified by fewer than two people (0 when the rule held)."""
        return self.decided - self.verified_by_two


def two_person_evidence(*, system: Any) -> TwoPersonEvidence:
    """Counts over the system's identification results (gold copies left out: they measure reviewers)."""
    from django.db import connection
    from django.db.models import Count, Q

    reason = "biometric_identification"
    # JSON containment is PostgreSQL's; SQLite stores the list as JSON text, where the quoted name is unique.
    routed_for_it = (Q(routing_reasons__contains=[reason]) if connection.vendor == "postgresql"
                     else Q(routing_reasons__icontains=f'"{reason}"'))
    cases = Case.objects.filter(routed_for_it, system=system, is_gold=False)
    counted = cases.annotate(
        reviewers=Count("decisions__reviewer", distinct=True),
        first_round_labels=Count("decisions__label", filter=Q(decisions__round=1), distinct=True),
        escalations=Count("decisions", filter=Q(decisions__outcome="escalate")),
    )
    decided = counted.filter(status="decided")
    return TwoPersonEvidence(
        identifications=cases.count(),
        decided=decided.count(),
        verified_by_two=decided.filter(reviewers__gte=2).count(),
        disagreements=counted.filter(Q(first_round_labels__gt=1) | Q(escalations__gt=0)).count(),
        adjudications=decided.filter(resolution="adjudicated").count(),
        open=cases.exclude(status__in=["decided", "auto_accepted"]).count(),
    )
