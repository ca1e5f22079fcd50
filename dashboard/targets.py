"""KPI targets: the defaults in one place, overridable per system in ``AISystem.kpi_targets``.

A system's ``kpi_targets`` JSON maps a key below to a number (its own target) or
``null`` (no target for that KPI), e.g. ``{"time_to_resolution_p50_s": 3600,
"agreement_percent": 0.9}``. Unknown keys and non-numeric values are ignored (the
default applies). Fractions are fractions (0.85), times are seconds. The
all-systems view uses the defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    # The playbook's target for fast queues; slower queues set their own per system.
    "time_to_resolution_p50_s": TargetSpec(MAX, 30.0, "playbook: fast queues resolve within 30 s"),
    "time_to_resolution_p90_s": TargetSpec(MAX, None, "set per system"),
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


def targets_for(overrides: Mapping[str, Any] | None) -> dict[str, float | None]:
    """The effective targets: defaults, replaced by a system's valid overrides."""
    result: dict[str, float | None] = {key: spec.default for key, spec in TARGETS.items()}
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
