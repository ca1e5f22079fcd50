"""Helpers for the evidence tests: a test signing key, tampering, the offline verifier, biometric data."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.db import connection

from audit.models import AuditEvent

REPO = Path(__file__).resolve().parents[2]
VERIFIER = REPO / "tools" / "verify_audit_export.py"
# The system interpreter, isolated (-I): no virtualenv, no Django, no project on its path.
SYSTEM_PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else (shutil.which("python3") or "python3")
TABLE = AuditEvent._meta.db_table


def new_private_pem() -> str:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


TEST_KEY_PEM = new_private_pem()


@pytest.fixture(name="audit_key")
def audit_key_fixture(settings: Any) -> str:
    """Sign with a key made for this test session (the key file of the embedded default stays untouched)."""
    settings.HITL_AUDIT_SIGNING_KEY = TEST_KEY_PEM
    return TEST_KEY_PEM


@pytest.fixture(name="media_root")
def media_root_fixture(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def tamper(sql: str, params: list[Any] | None = None) -> None:
    """Change audit rows behind the app's back, as a database superuser could (PostgreSQL)."""
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER USER")
        try:
            cursor.execute(sql, params or [])
        finally:
            cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER USER")


def run_verifier(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the shipped verifier as an auditor would: the system python, outside the project."""
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    return subprocess.run(
        [SYSTEM_PYTHON, "-I", str(VERIFIER), str(path), *args],
        cwd=path.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def write_public_key(tmp_path: Path, pem_private: str = TEST_KEY_PEM) -> dict[str, Path | str]:
    """The public key in the forms the verifier accepts: a PEM file, hex and base64 strings."""
    import base64

    key = serialization.load_pem_private_key(pem_private.encode(), password=None).public_key()
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    pem_path = tmp_path / "public.pem"
    pem_path.write_bytes(key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return {"pem": pem_path, "hex": raw.hex(), "base64": base64.b64encode(raw).decode()}


# --- Cases made through the real services -----------------------------------------------------


def integration_for(slug: str) -> Any:
    from tests.reviews.queue_helpers import make_user

    return make_user("integration", systems=[slug])


def ingest_case(integration: Any, system: str, point: str, external_id: str, **kwargs: Any) -> Any:
    from tests.reviews.factories import ingest

    return ingest(integration, system=system, point=point, external_id=external_id, **kwargs)


def decide_by(case: Any, *reviewers: Any, outcome: str = "approve", label: str | None = None) -> Any:
    """Each reviewer in turn claims ``case`` (it must be their next) and records the same verdict."""
    from reviews.services.decisions import decision_record
    from reviews.services.queue import claim_next

    for reviewer in reviewers:
        claimed = claim_next(reviewer=reviewer, system=case.system)
        assert claimed is not None and claimed.pk == case.pk
        case = decision_record(reviewer=reviewer, case=case, outcome=outcome, label=label,
                               rationale="" if outcome == "approve" else "Checked against the source.")
    return case
