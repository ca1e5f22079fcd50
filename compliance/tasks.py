"""Celery tasks of the compliance app: thin, named, idempotent."""

from __future__ import annotations

from celery import shared_task

from compliance.services.explanations import explanation_deadline_reminders


@shared_task(name="compliance.explanation_deadline_reminders")
def explanation_deadline_reminders_task() -> int:
    """Art. 86 deadlines: remind before and when overdue (once each, by the notification's dedupe key)."""
    return explanation_deadline_reminders()
