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


# --- A system's bias-audit thresholds ----------------------------------------------------------

# The keys a system's ``bias_thresholds`` may set, with their meaning; the fairness app reads
# its defaults for the same keys (fairness.metrics). One definition, so a key that is accepted
# is a key that is applied.
BIAS_THRESHOLD_KEYS: dict[str, str] = {
    "disparate_impact_min": "lowest acceptable disparate impact ratio (0-1; four-fifths rule: 0.8)",
    "demographic_parity_max": "largest acceptable demographic parity difference (0-1)",
    "equalized_odds_max": "largest acceptable equalized odds difference (0-1)",
    "min_group_size": "smallest group (number of cases) with metrics; smaller groups are reported as insufficient",
}
# Names that look right but mean nothing here: the 400 says which key was meant.
BIAS_THRESHOLD_ALIASES = {"disparate_impact_ratio": "disparate_impact_min", "demographic_parity_difference":
                          "demographic_parity_max", "equalized_odds_difference": "equalized_odds_max"}
MAX_MIN_GROUP_SIZE = 1_000_000


def clean_bias_thresholds(value: object) -> dict[str, float | int]:
    """``bias_thresholds`` checked strictly: known keys, numbers in range; ``min_group_size`` as an int.

    Raises ``ValidationError({"bias_thresholds": [...]})`` naming each bad key.
    A whole number given as a float (``20.0``, as JSON parsers may deliver it) is
    taken as that integer; ``20.5`` is refused.
    """
    import math

    from django.core.exceptions import ValidationError

    if not isinstance(value, dict):
        raise ValidationError({"bias_thresholds": ["Must be an object of threshold names to numbers."]})
    problems: list[str] = []
    cleaned: dict[str, float | int] = {}
    for key, raw in value.items():
        if key not in BIAS_THRESHOLD_KEYS:
            hint = f" (did you mean {BIAS_THRESHOLD_ALIASES[key]}?)" if key in BIAS_THRESHOLD_ALIASES else ""
            problems.append(f"{key}: unknown threshold{hint}; known: {', '.join(BIAS_THRESHOLD_KEYS)}.")
            continue
        if raw is None:
            continue  # null: use the default
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
            problems.append(f"{key}: must be a number.")
            continue
        if key == "min_group_size":
            if raw != int(raw) or not 1 <= raw <= MAX_MIN_GROUP_SIZE:
                problems.append(f"{key}: must be a whole number from 1 to {MAX_MIN_GROUP_SIZE}.")
                continue
            cleaned[key] = int(raw)
        elif not 0 <= raw <= 1:
            problems.append(f"{key}: must be between 0 and 1.")
        else:
            cleaned[key] = float(raw)
    if problems:
        raise ValidationError({"bias_thresholds": problems})
    return cleaned
