"""``manage.py kpi_rollup [--full]``: bring the KPI rollup up to date now (beat does it every minute)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from dashboard.services import rollup_refresh


class Command(BaseCommand):
    help = "Recompute the KPI rollup days touched since the last run (--full: every day)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--full", action="store_true", help="rebuild every day from the first case")

    def handle(self, *args: Any, **options: Any) -> None:
        result = rollup_refresh(full=options["full"])
        if result.skipped:
            self.stdout.write("another refresh is running; nothing done")
            return
        kind = "full rebuild" if result.full else "refresh"
        self.stdout.write(
            f"{kind}: {result.days} day(s) recomputed in {result.duration_ms} ms; built through {result.built_through}"
        )
