"""Run post-market monitoring now (beat runs it daily): ``manage.py run_monitoring [--day YYYY-MM-DD]``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from dashboard.monitoring import monitoring_run


class Command(BaseCommand):
    help = "Compare each intervention point's day (default: yesterday, UTC) with its reference window and raise alerts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--day", type=dt.date.fromisoformat, default=None, help="the UTC day to judge")

    def handle(self, *args: Any, **options: Any) -> None:
        alerts = monitoring_run(day=options["day"])
        for alert in alerts:
            self.stdout.write(f"{alert.severity}: {alert.system.slug}/{alert.intervention_point.slug} "
                              f"{alert.metric} {alert.day}: {alert.message}")
        self.stdout.write(f"{len(alerts)} new monitoring alert(s).")
