"""Aggregate cases and decisions into additive KPI figures (the one place that reads them for KPIs).

``aggregate(start, end)`` reads the cases received in ``[start, end)`` and
their decisions with three queries (a GROUP BY over the cases, the resolution
times of reviewed cases, the decisions) and returns the figures per received
day. The rollup refresh stores its result; the KPI module calls it directly for
the days the rollup does not cover yet (and for partial days at a period's
edges), so both paths share one definition.

Scope rules (api-v1 "KPI scope"): a case belongs to the UTC day it was
received; gold items stay out of the case figures and count only in reviewer
figures.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import combinations, groupby
from operator import itemgetter

from django.db import connection
from django.db.models import BooleanField, Count, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.functions import TruncDate

from dashboard.figures import CaseFigures, ReviewerFigures
from hitl_portal.sql import column_of
from quality import stats
from reviews.models import OPEN_STATUSES, Case, CaseStatus, Decision, DecisionOutcome

UTC = dt.UTC
CLOSED_STATUSES = (CaseStatus.DECIDED, CaseStatus.AUTO_ACCEPTED)

CaseKey = tuple[dt.date, int, int]  # (received day, system id, intervention point id)
ReviewerKey = tuple[dt.date, int, int]  # (received day, system id, reviewer id)


@dataclass
class Aggregate:
    """Figures of a slice of cases, per received day."""

    cases: dict[CaseKey, CaseFigures] = field(default_factory=lambda: defaultdict(CaseFigures))
    reviewers: dict[ReviewerKey, ReviewerFigures] = field(default_factory=lambda: defaultdict(ReviewerFigures))


def utc_day(moment: dt.datetime) -> dt.date:
    return moment.astimezone(UTC).date()


def aggregate(start: dt.datetime, end: dt.datetime, *, system_id: int | None = None) -> Aggregate:
    """Figures of the cases received in ``[start, end)`` (optionally of one system), per received day."""
    result = Aggregate()
    if start >= end:
        return result
    cases = Case.objects.filter(received_at__gte=start, received_at__lt=end)
    if system_id is not None:
        cases = cases.filter(system_id=system_id)
    decisions = Decision.objects.filter(case__received_at__gte=start, case__received_at__lt=end)
    if system_id is not None:
        decisions = decisions.filter(case__system_id=system_id)
    if connection.vendor == "postgresql" and end - start <= EDGE_SPAN:
        decisions = decisions.filter(_decisions_of_cases_received(start, end))
    _add_case_groups(result, cases)
    _add_resolution_times(result, cases)
    _add_decisions(result, decisions)
    return result


# The live edges of a KPI window (the parts the rollup does not cover) are at most a day.
EDGE_SPAN = dt.timedelta(days=1)


def _decisions_of_cases_received(start: dt.datetime, end: dt.datetime) -> RawSQL:
    """``decision.case_id = ANY(ARRAY(ids of the cases received in [start, end)))``.

    The same rows as the join's condition (which stays), but PostgreSQL can only plan
    the join as a hash over *every* decision (its default ``random_page_cost`` prices the
    index probes too high): 1.16 s for an edge day's 14 k decisions among 3.66 M at
    10 M cases. The id array first makes it probe the decisions' (case, reviewer,
    round) index: 0.11 s (docs/PERFORMANCE.md). Only for spans of a day or less: the
    rollup's multi-day chunks are right to hash.
    """
    case_table = connection.ops.quote_name(Case._meta.db_table)
    decision_table = connection.ops.quote_name(Decision._meta.db_table)
    received = connection.ops.quote_name(column_of(Case, "received_at"))
    case_column = connection.ops.quote_name(column_of(Decision, "case"))
    # Identifiers from the models' metadata, values as parameters: nothing from a request is spliced in.
    return RawSQL(  # noqa: S611
        f"{decision_table}.{case_column} = ANY(ARRAY(SELECT c.{connection.ops.quote_name('id')} "
        f"FROM {case_table} c WHERE c.{received} >= %s AND c.{received} < %s))",
        (start, end), output_field=BooleanField(),
    )


def _add_case_groups(result: Aggregate, cases: QuerySet[Case]) -> None:
    groups = (
        cases.filter(is_gold=False)
        .annotate(day=TruncDate("received_at", tzinfo=UTC))
        .values("day", "system_id", "intervention_point_id", "routed", "status", "resolution",
                "prediction_label", "final_label", "true_label", "sla_breached")
        .annotate(n=Count("id"))
        .order_by()
    )
    for group in groups:
        n = group["n"]
        figures = result.cases[(group["day"], group["system_id"], group["intervention_point_id"])]
        ai, final, status = group["prediction_label"], group["final_label"], group["status"]
        figures.cases_total += n
        if group["routed"]:
            figures.routed += n
        else:
            figures.auto_accepted += n
        if status in OPEN_STATUSES:
            figures.open += n
        if status in CLOSED_STATUSES:
            resolution = group["resolution"]
            assert resolution is not None  # the case_closed_has_resolution constraint
            figures.resolutions[resolution] += n
            if group["true_label"] is not None and ai is not None:
                figures.truth_labels[(ai, final, group["true_label"])] += n
        if group["routed"] and status == CaseStatus.DECIDED:
            figures.reviewed += n
            if ai is not None:
                figures.override_base += n
                figures.reviewed_labels[(ai, final)] += n
                if final != ai:
                    figures.overridden += n
        if group["sla_breached"]:
            figures.sla_breaches += n


def _add_resolution_times(result: Aggregate, cases: QuerySet[Case]) -> None:
    rows = (
        cases.filter(is_gold=False, routed=True, status=CaseStatus.DECIDED, decided_at__isnull=False)
        .values_list("system_id", "intervention_point_id", "received_at", "decided_at")
        .order_by()
    )
    for system_id, point_id, received_at, decided_at in rows:
        assert decided_at is not None  # decided_at__isnull=False above
        day = utc_day(received_at)
        figures = result.cases[(day, system_id, point_id)]
        ms = max(0, (decided_at - received_at) // dt.timedelta(milliseconds=1))
        figures.add_resolution_time(ms)
        figures.decided_after[max(0, (utc_day(decided_at) - day).days)] += 1


def _add_decisions(result: Aggregate, decisions: QuerySet[Decision]) -> None:
    rows = (
        decisions.values_list(
            "case_id", "round", "reviewer_id", "outcome", "label", "ai_shown", "is_adjudication", "time_spent_ms",
            "case__system_id", "case__intervention_point_id", "case__received_at", "case__is_gold",
            "case__gold_label", "case__prediction_label",
        ).order_by("case_id", "round", "reviewer_id")
    )
    for (_case_id, round_), unit in groupby(rows, key=itemgetter(0, 1)):
        ratings: list[tuple[int, str]] = []
        first = None
        for (_c, _r, reviewer_id, outcome, label, ai_shown, adjudication, spent_ms, system_id, point_id,
             received_at, is_gold, gold_label, ai_label) in unit:
            day = utc_day(received_at)
            first = (day, system_id, point_id, is_gold)
            figures = result.reviewers[(day, system_id, reviewer_id)]
            figures.decisions += 1
            figures.add_time(spent_ms)
            if adjudication:
                figures.adjudications += 1
            if outcome == DecisionOutcome.APPROVE:
                figures.approvals += 1
            elif outcome == DecisionOutcome.OVERRIDE:
                figures.overrides += 1
            elif outcome == DecisionOutcome.ESCALATE:
                # Edits, rejections, modifications and denials (generation/action cases) are
                # decisions, counted per kind by dashboard.kinds.
                figures.escalations += 1
            verdict = None if outcome == DecisionOutcome.ESCALATE else label
            if adjudication:
                continue  # an adjudicator's ruling is neither a rating nor a reviewer's own call on the AI
            if is_gold and gold_label is not None and round_ == 1:
                # As quality.selectors counts gold answers: an escalation is answered, not correct.
                figures.gold_answered += 1
                figures.gold_correct += verdict is not None and verdict == gold_label
            if verdict is None:
                continue  # no rating: nothing to compare with the AI or a co-reviewer
            if ai_label is not None:
                if ai_shown:
                    figures.ai_shown += 1
                    figures.ai_shown_agree += verdict == ai_label
                else:
                    figures.ai_hidden += 1
                    figures.ai_hidden_agree += verdict == ai_label
            ratings.append((reviewer_id, verdict))
        if first is None or len(ratings) < 2:
            continue
        day, system_id, point_id, is_gold = first
        size = len(ratings)
        if is_gold:
            continue  # agreement is measured on live cases (as in quality.selectors), never on gold copies
        result.cases[(day, system_id, point_id)].agreement_pairs.update(
            stats.unit_pairs([label for _reviewer, label in ratings])
        )
        for (rev_a, label_a), (rev_b, label_b) in combinations(ratings, 2):
            result.reviewers[(day, system_id, rev_a)].pairs[(label_a, label_b, size)] += 1
            result.reviewers[(day, system_id, rev_b)].pairs[(label_b, label_a, size)] += 1
