"""Helpers shared by the reviews services."""

from __future__ import annotations

from typing import Any

from django.db import models

from hitl_portal.actors import Actor


def snapshot(instance: models.Model, fields: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """The named fields of an instance, for an audit event's before/after."""
    return {name: getattr(instance, name) for name in fields}


def apply_changes(instance: models.Model, changes: dict[str, Any], actor: Actor) -> list[str]:
    """Set the changed fields and save only them (no history row when nothing changed)."""
    changed = [name for name, value in changes.items() if getattr(instance, name) != value]
    for name in changed:
        setattr(instance, name, changes[name])
    if changed:
        instance._history_user = actor  # type: ignore[attr-defined]
        instance.full_clean()
        update_fields = [*changed]
        if any(f.name == "updated_at" for f in instance._meta.fields):
            update_fields.append("updated_at")
        instance.save(update_fields=update_fields)
    return changed
