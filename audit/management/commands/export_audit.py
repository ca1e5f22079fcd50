"""``manage.py export_audit``: write the chain (or a stretch of it) as verifiable JSON Lines.

    manage.py export_audit [--from SEQ|TIME] [--to SEQ|TIME] [--output FILE | --output -]

``--from``/``--to`` take a seq (inclusive) or an ISO 8601 time (``from`` inclusive,
``to`` exclusive), as ``GET /api/v1/audit/export/`` does. Without ``--output`` the
file goes to ``MEDIA_ROOT/audit-exports/``; ``-`` streams to standard output. The
export is recorded as ``audit.exported`` (with the file's SHA-256 when written to a
file). Check it with ``python3 tools/verify_audit_export.py FILE --key KEY``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from audit.api.serializers import ExportQuerySerializer
from audit.export import build_manifest, export_recorded, export_to_file, iter_export, write_lines
from audit.selectors import export_range


class Command(BaseCommand):
    help = "Export audit events as JSON Lines (first line a signed manifest), verifiable offline."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="from_", help="First seq (inclusive) or start time (ISO 8601, inclusive).")
        parser.add_argument("--to", help="Last seq (inclusive) or end time (ISO 8601, exclusive).")
        parser.add_argument("--output", "-o", help="File to write ('-' for standard output).")
        parser.add_argument("--chunk-size", type=int, default=2000, help="Rows fetched per database round trip.")

    def handle(self, *args: Any, **options: Any) -> None:
        query = {key: value for key, value in (("from", options["from_"]), ("to", options["to"])) if value}
        params = ExportQuerySerializer(data=query)
        try:
            params.is_valid(raise_exception=True)
        except ValidationError as exc:
            raise CommandError(f"invalid range: {exc.detail}") from exc
        rng = export_range(**params.validated_data)
        output = options["output"]
        if output == "-":
            manifest = build_manifest(rng)
            write_lines(iter_export(rng, manifest=manifest, chunk_size=options["chunk_size"]), sys.stdout.buffer)
            sys.stdout.buffer.flush()
            export_recorded(actor=None, rng=rng, manifest=manifest, destination="stdout")
            return
        if output:
            path = Path(output)
        else:
            span = f"{rng.first_seq}-{rng.last_seq}" if rng.count else "empty"
            path = Path(settings.MEDIA_ROOT) / "audit-exports" / (
                f"audit-export-{span}-{timezone.now():%Y%m%dT%H%M%S}.jsonl"
            )
        sha256, size = export_to_file(actor=None, rng=rng, path=path, chunk_size=options["chunk_size"])
        self.stdout.write(self.style.SUCCESS(f"exported {rng.count} events to {path}"))
        self.stdout.write(f"range: {rng.first_seq}–{rng.last_seq}" if rng.count else "range: empty")
        self.stdout.write(f"sha256: {sha256}")
        self.stdout.write(f"bytes: {size}")
