"""``manage.py import_gold_items FILE --as USERNAME``: gold items from a CSV file (all or nothing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser

from hitl_portal.actors import set_actor
from hitl_portal.permissions import has_role
from hitl_portal.roles import COMPLIANCE_OFFICER
from quality.services.gold import CSV_COLUMNS, gold_items_import_csv


class Command(BaseCommand):
    help = (
        "Import gold items from a CSV file with the header "
        + ",".join(CSV_COLUMNS)
        + " (input as a JSON object; prediction_*, model_version, external_id and note optional). "
        "Nothing is imported when any row is invalid."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="Path of the CSV file (UTF-8).")
        parser.add_argument("--as", dest="username", required=True,
                            help="The compliance officer (or admin) the import is recorded as (audit trail).")

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(username=options["username"]).first()
        if user is None or not has_role(user, (COMPLIANCE_OFFICER,)):
            raise CommandError("--as must name a compliance officer or an admin.")
        try:
            text = Path(options["file"]).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read {options['file']}: {exc}") from exc
        set_actor(user)
        result = gold_items_import_csv(actor=user, text=text)
        if result.errors:
            for line, errors in sorted(result.errors.items()):
                for field, messages in errors.items():
                    self.stderr.write(f"line {line}: {field}: {' '.join(messages)}")
            raise CommandError("Nothing imported: fix the rows above and run the import again.")
        self.stdout.write(self.style.SUCCESS(f"Imported {len(result.created)} gold item(s)."))
