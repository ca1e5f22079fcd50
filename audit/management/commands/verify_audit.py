"""``manage.py verify_audit``: walk the sealed chain, its signed checkpoints and the external witness.

Exit code 0 when the chain verifies, 1 when it is broken (so cron jobs and CI can
alert on it). ``--seal`` seals pending events first, so the check covers
everything committed so far. ``--record`` does what the nightly task does: records
the verification (``audit.verified``) and files an incident when the chain is broken.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from audit.selectors import verify_chain
from audit.services import chain_verification_record, seal_pending


class Command(BaseCommand):
    help = "Verify the audit hash chain and its signed checkpoints; exit code 1 when it is broken."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seal", action="store_true", help="Seal pending events before verifying.")
        parser.add_argument("--json", action="store_true", help="Print the result as one JSON object.")
        parser.add_argument(
            "--record", action="store_true",
            help="Record the verification in the trail and file an incident when broken (as the nightly task does).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["seal"]:
            seal_pending(wait=True)
        result = verify_chain()
        if options["record"]:
            chain_verification_record(result=result, actor=None)
        if options["json"]:
            self.stdout.write(json.dumps(result.as_report()))
        else:
            style = self.style.SUCCESS if result.ok else self.style.ERROR
            self.stdout.write(style(f"ok: {str(result.ok).lower()}"))
            self.stdout.write(f"events: {result.events}")
            self.stdout.write(f"head: {result.head_hash or '-'}")
            self.stdout.write(f"checkpoints: {result.checkpoints}")
            witnessed = (
                f"{result.witnessed_checkpoints} checkpoints, last at seq {result.last_witnessed_seq}"
                if result.witness_checked else "not compared"
            )
            self.stdout.write(f"witness ({result.witness}): {witnessed}")
            self.stdout.write(f"first bad seq: {result.first_bad_seq if result.first_bad_seq is not None else '-'}")
            if result.problem:
                self.stdout.write(f"problem: {result.problem}")
        if not result.ok:
            # SystemExit rather than CommandError: the report above is the message,
            # and call_command callers (tests) can still read the exit code.
            raise SystemExit(1)
