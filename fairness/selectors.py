"""Reads of the fairness app: the chunk aggregate, audits with their progress, their representation."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Count, QuerySet
from django.db.models.fields.json import KeyTextTransform

from fairness.metrics import group_value
from fairness.models import AuditStatus, BiasAudit
from reviews.models import Case, CaseKind, InterventionPoint


def audit_cases(*, system_id: int, period_from: dt.datetime, period_to: dt.datetime) -> QuerySet[Case]:
    """The cases an audit covers: the system's non-gold cases received in ``[period_from, period_to)``.

    Gold items measure reviewers, not the system, so they never count (as in the KPIs).
    Generation and action cases carry no label to compare across groups: skipped.
    """
    cases = Case.objects.filter(
        system_id=system_id, received_at__gte=period_from, received_at__lt=period_to, is_gold=False,
    ).order_by()
    # The system's other kinds of points are left out by id (``NOT IN`` a subquery of a handful of
    # rows, a filter on the range's rows). Joining the points instead made PostgreSQL AND the
    # (system, received_at) range with the whole intervention_point_id index for each point: 2.5 M
    # index entries per point and chunk at 10 M cases, 2.7 s for a day of 23 k cases (EXPLAIN in
    # docs/PERFORMANCE.md, "Figures at 10 million cases").
    others = InterventionPoint.objects.filter(system_id=system_id).exclude(kind=CaseKind.CLASSIFICATION)
    return cases.exclude(intervention_point_id__in=others.values("pk"))


def chunk_counts(audit: BiasAudit, *, received_from: dt.datetime, received_to: dt.datetime) -> list[list[Any]]:
    """One SQL aggregate over the audit's cases received in ``[received_from, received_to)``.

    ``GROUP BY subject->>attribute, prediction_label, final_label, true_label,
    routed, status`` over one range of the (system, received_at) index: a day of
    100,000 cases comes back as a few dozen rows.
    The attribute is passed to the JSON key transform as a parameter, never
    spliced into the SQL. Group values come back as text (SQLite hands numbers
    back as numbers). Rows are sorted, so the same data gives the same list.
    """
    rows = (
        audit_cases(system_id=audit.system_id, period_from=max(received_from, audit.period_from),
                    period_to=min(received_to, audit.period_to))
        .annotate(group=KeyTextTransform(audit.attribute, "subject"))
        .values_list("group", "prediction_label", "final_label", "true_label", "routed", "status")
        .annotate(n=Count("*"))
    )
    counted = [[group_value(group), ai, final, truth, bool(routed), status, n]
               for group, ai, final, truth, routed, status, n in rows]
    counted.sort(key=lambda row: tuple((1, "") if v is None else (0, str(v)) for v in row[:6]))
    return counted


def audits_visible(*, system_slug: str | None = None) -> QuerySet[BiasAudit]:
    """Audits with what their representation needs (system, requester, incident, chunks done), newest first.

    Every role allowed to see audits (officers, managers, admins) sees every
    system's audits, so visibility is a role check, not a filter.
    """
    queryset = (
        BiasAudit.objects.select_related("system", "requested_by", "incident")
        .annotate(chunks_done=Count("chunks"))
        .order_by("-id")
    )
    if system_slug:
        queryset = queryset.filter(system__slug=system_slug)
    return queryset


def audit_get(audit_id: int) -> BiasAudit | None:
    return audits_visible().filter(pk=audit_id).first()


def progress_of(audit: BiasAudit) -> dict[str, Any]:
    """Chunks done out of planned; ``fraction`` is 1 once done and 0 before planning."""
    done = getattr(audit, "chunks_done", None)
    if done is None:
        done = audit.chunks.count()
    total = audit.chunks_total
    if audit.status == AuditStatus.DONE:
        fraction = 1.0
    elif total:
        fraction = min(done, total) / total
    else:
        fraction = 0.0
    return {"chunks_done": done, "chunks_total": total, "fraction": fraction}


GROUP_KEYS = (
    "value", "n", "selection_rate_ai", "selection_rate_final", "tpr", "fpr", "tpr_ai", "fpr_ai", "tpr_final",
    "fpr_final", "override_rate", "reviewed", "ground_truth", "insufficient_n", "included", "excluded_reason",
)
METRIC_KEYS = (
    "disparate_impact_ratio", "demographic_parity_difference", "equalized_odds_difference", "tpr_difference",
    "fpr_difference", "selection_rate_min", "selection_rate_max", "min_group", "max_group", "groups_compared",
    "four_fifths_rule",
)
THRESHOLD_KEYS = ("disparate_impact_min", "demographic_parity_max", "equalized_odds_max")


def _ordered(data: dict[str, Any] | None, keys: tuple[str, ...]) -> dict[str, Any] | None:
    """jsonb does not keep key order: serve the documented order (then anything else)."""
    if data is None:
        return None
    return {**{key: data[key] for key in keys if key in data}, **data}


def audit_representation(audit: BiasAudit) -> dict[str, Any]:
    """The API's (and the pages') view of an audit; ``groups``/``metrics`` fill in when it is done."""
    results = audit.results or {}
    metrics = results.get("metrics") or {}
    return {
        "id": audit.pk,
        "system": audit.system.slug,
        "attribute": audit.attribute,
        "from": audit.period_from,
        "to": audit.period_to,
        "status": audit.status,
        "progress": progress_of(audit),
        "requested_by": audit.requested_by.get_username() if audit.requested_by is not None else None,
        "requested_at": audit.requested_at,
        "started_at": audit.started_at,
        "finished_at": audit.finished_at,
        "positive_label": audit.positive_label,
        "thresholds": _ordered(audit.thresholds, THRESHOLD_KEYS),
        "min_group_size": audit.min_group_size,
        "cases": results.get("cases", 0) if audit.status == AuditStatus.DONE else None,
        "groups": [_ordered(group, GROUP_KEYS) for group in results.get("groups", [])],
        "metrics": {kind: _ordered(metrics.get(kind), METRIC_KEYS) for kind in ("ai", "final")},
        "breaches": results.get("breaches", []),
        "flagged": audit.flagged,
        "incident": audit.incident_id,
        "error": audit.error or None,
    }
