"""KPIs of generation and action intervention points (issue 14).

Read live from the cases of the period (``received_at`` in the scope; gold items
excluded), per intervention point, from each case's ``final_output``:

- generation: approval, edit and rejection rates among texts a person decided,
  the mean normalised edit distance of the edits, rejections by category;
- action: approvals, modifications and denials among calls a person decided,
  requests denied because nobody answered in time, and time to decision.

Rates are fractions of the human-decided cases (``null`` when there were none);
auto-accepted cases (never routed) are counted apart.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from reviews.models import Case, CaseKind, CaseStatus, InterventionPoint, Resolution

HUMAN = (Resolution.REVIEWED, Resolution.ADJUDICATED)


def _rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))], 3)


def kind_kpis(scope: Any) -> list[dict[str, Any]]:
    """One row per generation/action point with cases in the scope (a ``dashboard.selectors.KpiScope``)."""
    # The points first (a handful of rows), then their cases by id: joined to the points, the
    # planner scanned every case of the period (10 M cases: a JIT-compiled seq scan on every KPI
    # request, docs/PERFORMANCE.md), and a portal without such points needs no case query at all.
    points_of_kind = InterventionPoint.objects.filter(kind__in=[CaseKind.GENERATION, CaseKind.ACTION])
    if scope.system_id is not None:
        points_of_kind = points_of_kind.filter(system_id=scope.system_id)
    point_ids = list(points_of_kind.values_list("pk", flat=True))
    if not point_ids:
        return []
    cases = Case.objects.filter(
        received_at__gte=scope.start, received_at__lt=scope.end, is_gold=False, intervention_point_id__in=point_ids,
    )
    rows = cases.values_list(
        "intervention_point_id", "system__slug", "intervention_point__slug", "intervention_point__kind", "status",
        "resolution", "final_output", "received_at", "decided_at",
    ).order_by("intervention_point_id")
    points: dict[int, dict[str, Any]] = {}
    for point_id, system, point, kind, status, resolution, final, received_at, decided_at in rows.iterator():
        row = points.get(point_id)
        if row is None:
            row = points[point_id] = {"system": system, "intervention_point": point, "kind": kind, "cases": 0,
                                      "auto_accepted": 0, "open": 0, "expired": 0, "human_decided": 0,
                                      "_outcomes": Counter(), "_distances": [], "_categories": Counter(),
                                      "_seconds": []}
        row["cases"] += 1
        final = final or {}
        if status == CaseStatus.AUTO_ACCEPTED:
            row["auto_accepted"] += 1
        elif status != CaseStatus.DECIDED:
            row["open"] += 1
        elif resolution in (Resolution.SLA_ACCEPT_AI, Resolution.SLA_FAIL_CLOSED):
            row["expired"] += 1
        elif resolution in HUMAN:
            row["human_decided"] += 1
            if decided_at is not None:
                row["_seconds"].append((decided_at - received_at).total_seconds())
            if kind == CaseKind.GENERATION:
                if final.get("rejected"):
                    row["_outcomes"]["rejected"] += 1
                    row["_categories"][final.get("category") or "uncategorised"] += 1
                elif final.get("edited"):
                    row["_outcomes"]["edited"] += 1
                    row["_distances"].append(float(final.get("edit_distance") or 0.0))
                else:
                    row["_outcomes"]["approved"] += 1
            elif not final.get("approved"):
                row["_outcomes"]["denied"] += 1
            elif final.get("modified"):
                row["_outcomes"]["modified"] += 1
            else:
                row["_outcomes"]["approved"] += 1
    return [_finish(row) for row in points.values()]


def _finish(row: dict[str, Any]) -> dict[str, Any]:
    outcomes: Counter[str] = row.pop("_outcomes")
    distances: list[float] = row.pop("_distances")
    categories: Counter[str] = row.pop("_categories")
    seconds: list[float] = row.pop("_seconds")
    decided = row["human_decided"]
    row["time_to_decision_s"] = {"p50": _percentile(seconds, 0.5), "p90": _percentile(seconds, 0.9)}
    if row["kind"] == CaseKind.GENERATION:
        row.update(
            approved=outcomes["approved"], edited=outcomes["edited"], rejected=outcomes["rejected"],
            approval_rate=_rate(outcomes["approved"], decided), edit_rate=_rate(outcomes["edited"], decided),
            rejection_rate=_rate(outcomes["rejected"], decided),
            mean_edit_distance=round(sum(distances) / len(distances), 4) if distances else None,
            rejection_categories=dict(sorted(categories.items())),
        )
    else:
        row.update(
            approvals=outcomes["approved"], modifications=outcomes["modified"], denials=outcomes["denied"],
            approval_rate=_rate(outcomes["approved"], decided),
            modification_rate=_rate(outcomes["modified"], decided), denial_rate=_rate(outcomes["denied"], decided),
        )
    return row
