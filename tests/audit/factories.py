"""Test data for the audit tests: events and systems made through the real services."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from audit.models import AuditEvent
from audit.services import record_event
from reviews.models import AISystem
from reviews.services.systems import system_create


def write_events(count: int, *, action: str = "system.updated", **fields: Any) -> list[AuditEvent]:
    """``count`` events, each in its own transaction (as real state changes are)."""
    events = []
    for index in range(count):
        with transaction.atomic():
            events.append(
                record_event(
                    action,
                    actor=fields.get("actor"),
                    object_type=fields.get("object_type", "aisystem"),
                    object_id=fields.get("object_id", index + 1),
                    object_label=fields.get("object_label", f"object {index + 1}"),
                    system_id=fields.get("system_id"),
                    case_id=fields.get("case_id"),
                    data={"n": index, "note": "ä ü 漢字"},
                    reason=fields.get("reason", f"reason {index}"),
                )
            )
    return events


def make_system(slug: str = "credit-scoring", *, actor: Any = None, **fields: Any) -> AISystem:
    defaults: dict[str, Any] = {
        "name": slug.replace("-", " ").capitalize(),
        "labels": ["approve", "reject"],
        "declared_tier": "high",
        "annex_iii_area": "5b",
    }
    defaults.update(fields)
    name = defaults.pop("name")
    labels = defaults.pop("labels")
    return system_create(actor=actor, slug=slug, name=name, labels=labels, **defaults)
