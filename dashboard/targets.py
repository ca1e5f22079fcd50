"""KPI targets: the defaults in one place, overridable per system in ``AISystem.kpi_targets``.

Time-to-resolution targets come from the intervention points' SLAs (``sla_targets``).
A system's ``kpi_targets`` JSON maps a key below to a number (its own target) or
``null`` (no target for that KPI), e.g. ``{"time_to_resolution_p50_s": 3600,
"agreement_percent": 0.9}``. Unknown keys and non-numeric values are ignored (the
default applies). Fractions are fractions (0.85), times are seconds. The
all-systems view uses the defaults.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

MIN = "min"  # the figure should be at least the target
MAX = "max"  # the figure should be at most the target


@dataclass(frozen=True)
class TargetSpec:
    direction: str
    default: float | None
    why: str


TARGETS: dict[str, TargetSpec] = {
    # The playbook's "> 85 % agreement" (api-v1: percent agreement ≥ 0.85).
    "agreement_percent": TargetSpec(MIN, 0.85, "playbook: reviewers agree on at least 85 % of pairs"),
    # Landis & Koch: 0.61 and above is "substantial" agreement beyond chance.
    "agreement_kappa": TargetSpec(MIN, 0.61, "Landis & Koch: substantial agreement"),
    # Krippendorff: 0.667 is the lowest value for tentative conclusions.
    "agreement_alpha": TargetSpec(MIN, 0.667, "Krippendorff: tentative reliability"),
    # From the intervention points' SLAs (``sla_targets``): a 1-hour queue is not held to 30 s.
    "time_to_resolution_p50_s": TargetSpec(MAX, None, "within the points' SLA"),
    "time_to_resolution_p90_s": TargetSpec(MAX, None, "within the points' SLA"),
    # Human review must not make decisions worse than the AI alone.
    "accuracy_lift": TargetSpec(MIN, 0.0, "review must not lower accuracy"),
    "accuracy_final": TargetSpec(MIN, None, "set per system"),
    "error_reduction_rate": TargetSpec(MIN, None, "set per system"),
    "automation_rate": TargetSpec(MIN, None, "set per system"),
    "override_rate": TargetSpec(MAX, None, "set per system"),
    "sla_breaches": TargetSpec(MAX, 0, "every routed case is resolved within its SLA"),
    "queue_depth": TargetSpec(MAX, None, "set per system"),
    "bias_incidents_open": TargetSpec(MAX, 0, "no open bias incident"),
}


def sla_targets(sla_seconds: Iterable[int | None]) -> dict[str, float]:
    """Time-to-resolution targets from the SLAs of the points in scope.

    The figure mixes every point in scope, so it is held to the longest SLA among them
    (a shorter one would flag a slow queue that meets its own SLA); p50 and p90 both
    within it. No SLA in scope: no target.
    """
    slas = [s for s in sla_seconds if s]
    if not slas:
        return {}
    return {"time_to_resolution_p50_s": float(max(slas)), "time_to_resolution_p90_s": float(max(slas))}


def targets_for(overrides: Mapping[str, Any] | None, *, sla_seconds: Iterable[int | None] = ()
                ) -> dict[str, float | None]:
    """The effective targets: defaults, then the points' SLAs, replaced by a system's valid overrides."""
    result: dict[str, float | None] = {key: spec.default for key, spec in TARGETS.items()}
    result.update(sla_targets(sla_seconds))
    for key, value in (overrides or {}).items():
        if key not in TARGETS:
            continue
        if value is None:
            result[key] = None
        elif isinstance(value, int | float) and not isinstance(value, bool) and value == value:  # not NaN
            result[key] = float(value)
    return result


def target_status(key: str, value: float | None, target: float | None) -> str | None:
    """``"ok"`` when ``value`` meets ``target``, ``"miss"`` when not, ``None`` when either is undefined."""
    if value is None or target is None:
        return None
    direction = TARGETS[key].direction
    met = value >= target if direction == MIN else value <= target
    return "ok" if met else "miss"
