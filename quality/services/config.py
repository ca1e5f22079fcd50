"""The quality engine's tunables, typed (``hitl_portal/settings.py`` reads each from the environment)."""

from __future__ import annotations

from django.conf import settings


def gold_window() -> int:
    """Gold accuracy is reported over a reviewer's last N gold answers (``HITL_GOLD_WINDOW``, 50)."""
    return int(settings.HITL_GOLD_WINDOW)


def competence_window() -> int:
    """Suspension looks at the last N gold answers (``HITL_COMPETENCE_WINDOW``, 20)."""
    return int(settings.HITL_COMPETENCE_WINDOW)


def competence_min_accuracy() -> float:
    """Below this gold accuracy over the window a reviewer is suspended (``HITL_COMPETENCE_MIN_ACCURACY``, 0.8)."""
    return float(settings.HITL_COMPETENCE_MIN_ACCURACY)


def rubber_stamp_min_decisions() -> int:
    """Rubber-stamp flags need at least this many decisions (``HITL_RUBBER_STAMP_MIN_DECISIONS``, 30)."""
    return int(settings.HITL_RUBBER_STAMP_MIN_DECISIONS)


def rubber_stamp_approval_rate() -> float:
    """An approval rate at or above this is flagged (``HITL_RUBBER_STAMP_APPROVAL_RATE``, 0.98)."""
    return float(settings.HITL_RUBBER_STAMP_APPROVAL_RATE)


def rubber_stamp_time_floor_s() -> float:
    """A median time spent under this many seconds is flagged (``HITL_RUBBER_STAMP_TIME_FLOOR_S``, 3)."""
    return float(settings.HITL_RUBBER_STAMP_TIME_FLOOR_S)


def quality_period_days() -> int:
    """Default look-back of the reviewer quality figures (``HITL_QUALITY_PERIOD_DAYS``, 90)."""
    return int(settings.HITL_QUALITY_PERIOD_DAYS)


def threshold_min_ground_truth() -> int:
    """Cases with ground truth a threshold recommendation needs (``HITL_THRESHOLD_MIN_GROUND_TRUTH``, 50)."""
    return int(settings.HITL_THRESHOLD_MIN_GROUND_TRUTH)


def threshold_target_error() -> float:
    """Default error target of auto-accepted cases (``HITL_THRESHOLD_TARGET_ERROR``, 0.02)."""
    return float(settings.HITL_THRESHOLD_TARGET_ERROR)
