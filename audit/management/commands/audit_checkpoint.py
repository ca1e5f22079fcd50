"""``manage.py audit_checkpoint``: sign a checkpoint of the chain head now (beat does it every ten minutes)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.services import ChainBroken, checkpoint_sign


class Command(BaseCommand):
    help = "Sign a checkpoint of the audit chain head with the portal's Ed25519 key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--force", action="store_true",
                            help="Sign even if only checkpoint events were added since the last checkpoint.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            checkpoint = checkpoint_sign(actor=None, force=options["force"])
        except ChainBroken as exc:
            raise CommandError(f"not signed: {exc}") from exc
        if checkpoint is None:
            self.stdout.write("nothing new to sign")
            return
        self.stdout.write(self.style.SUCCESS(f"checkpoint signed at seq {checkpoint.seq}"))
        self.stdout.write(f"hash: {checkpoint.hash}")
        self.stdout.write(f"signature: {checkpoint.signature}")
        self.stdout.write(f"key fingerprint: {checkpoint.key_fingerprint}")
