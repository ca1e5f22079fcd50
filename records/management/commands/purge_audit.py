"""``manage.py purge_audit``: export, then erase, personal data past retention (as the nightly task does).

    manage.py purge_audit --system SLUG [--before 2025-01-31] [--reason TEXT]
    manage.py purge_audit --all

``--before`` may only be earlier than what the system's retention allows (and
never inside six months); a legal hold refuses the purge. Each run writes its
export under ``MEDIA_ROOT/audit-exports/`` and is recorded as ``audit.purged``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from records.retention import PurgeRefused, purge_expired, purge_system
from reviews.models import AISystem


def _cutoff(text: str) -> dt.datetime:
    moment = parse_datetime(text)
    if moment is None:
        day = parse_date(text)
        if day is None:
            raise CommandError(f"--before: not an ISO 8601 date or time: {text}")
        moment = dt.datetime(day.year, day.month, day.day)
    return timezone.make_aware(moment, dt.UTC) if timezone.is_naive(moment) else moment


class Command(BaseCommand):
    help = "Purge case data, history rows and event payloads past retention (after exporting them)."

    def add_arguments(self, parser: CommandParser) -> None:
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--system", help="Slug of the system to purge.")
        target.add_argument("--all", action="store_true", help="Every system, each up to its own retention.")
        parser.add_argument("--before", help="Cutoff (ISO 8601 date or time); default: the system's retention.")
        parser.add_argument("--reason", default="", help="Recorded in the audit event.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["all"]:
            if options["before"]:
                raise CommandError("--before applies to one --system")
            report = purge_expired(budget_s=float("inf"))
            self.stdout.write(f"purge runs: {report['runs']}, cases: {report['cases']}")
            if report["held"]:
                self.stdout.write(f"under legal hold (skipped): {', '.join(report['held'])}")
            return
        system = AISystem.objects.filter(slug=options["system"]).first()
        if system is None:
            raise CommandError(f"--system: unknown system {options['system']}")
        cutoff = _cutoff(options["before"]) if options["before"] else None
        runs = cases = 0
        while True:
            try:
                run = purge_system(actor=None, system=system, cutoff=cutoff, reason=options["reason"])
            except PurgeRefused as refusal:
                raise CommandError(refusal.message) from refusal
            if run is None:
                break
            runs += 1
            cases += run.cases_purged
            self.stdout.write(f"run {run.pk}: {run.cases_purged} cases, {run.events_purged} event payloads, "
                              f"{run.history_rows_deleted} history rows; export {run.export_path} "
                              f"(sha256 {run.export_sha256})")
        self.stdout.write(self.style.SUCCESS(f"purged {cases} cases of {system.slug} in {runs} runs"))
