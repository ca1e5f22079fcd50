"""Generating a dossier is itself evidence: each one is an audit event holding the document's SHA-256."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from audit.services import record_event
from compliance.dossier import RenderedDossier, build_dossier
from reviews.models import AISystem


@transaction.atomic
def dossier_generate(*, actor: Any, system: AISystem, fmt: str) -> RenderedDossier:
    """Build the dossier from live data and record ``dossier.generated`` with its hash."""
    generated_by = actor.get_username() if actor is not None else "system"
    dossier = build_dossier(system, fmt=fmt, generated_by=generated_by)
    chain = dossier.context["chain"]
    record_event(
        "dossier.generated", actor=actor, obj=system, system_id=system.pk,
        data={
            "format": fmt, "sha256": dossier.sha256, "bytes": len(dossier.content), "filename": dossier.filename,
            "catalog_version": dossier.context["catalog"].version, "chain_head": chain.head_hash,
            "chain_ok": chain.ok, "chain_events": chain.events,
            # What vouched for the chain's tail when the document was made (Art. 12: integrity of the logs).
            "chain_witness": chain.witness, "chain_witness_checked": chain.witness_checked,
            "chain_witnessed_checkpoints": chain.witnessed_checkpoints,
        },
    )
    return dossier
