"""``manage.py audit_public_key``: print the key that verifies checkpoints and exports (to publish it)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from audit.signing import public_key


class Command(BaseCommand):
    help = "Print the audit chain's Ed25519 verification key (PEM by default)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=["pem", "hex", "base64", "fingerprint"], default="pem")

    def handle(self, *args: Any, **options: Any) -> None:
        key = public_key()
        value = {"pem": key.pem.rstrip("\n"), "hex": key.hex, "base64": key.base64,
                 "fingerprint": key.fingerprint}[options["format"]]
        self.stdout.write(value)
