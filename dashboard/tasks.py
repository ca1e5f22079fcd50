"""KPI rollup task (beat runs it every minute).

Idempotent: a run recomputes whole days and replaces their rows; a run that
finds another one in progress (PostgreSQL advisory lock) does nothing.
"""

from __future__ import annotations

from celery import shared_task

from dashboard.services import rollup_refresh

__all__ = ["refresh_rollups", "run_monitoring"]


@shared_task(name="dashboard.refresh_rollups", ignore_result=True, acks_late=True)
def refresh_rollups(full: bool = False) -> int:
    """Recompute the rollup days touched since the last run; returns how many days were recomputed."""
    return rollup_refresh(full=full).days


@shared_task(name="dashboard.run_monitoring", ignore_result=True, acks_late=True)
def run_monitoring(day: str | None = None) -> int:
    """Judge yesterday (or ``day``, ISO) for every point; returns how many alerts were raised (idempotent)."""
    import datetime as dt

    from dashboard.monitoring import monitoring_run

    return len(monitoring_run(day=dt.date.fromisoformat(day) if day else None))
