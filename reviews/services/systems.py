"""AI systems and intervention points: registration, rule changes, halt and resume."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.services import record_event
from reviews.models import ROUTING_FIELDS, AISystem, InterventionPoint, RiskTier, SlaBreachAction, SystemStatus
from reviews.services.common import apply_changes, snapshot

SYSTEM_FIELDS = (
    "name", "purpose", "provider", "role", "sector", "declared_tier", "annex_iii_area", "labels",
    "positive_label", "protected_attributes", "retention_days", "is_public_body", "bias_thresholds", "kpi_targets",
)


def _validate_point_rules(system: AISystem, values: dict[str, Any]) -> None:
    """Rules the database cannot express (they depend on the system)."""
    if values.get("on_sla_breach") == SlaBreachAction.ACCEPT_AI and system.is_remote_biometric:
        raise ValidationError(
            {"on_sla_breach": ["accept_ai is not allowed for remote biometric identification (Annex III 1(a))."]}
        )
    if system.is_remote_biometric and values.get("reviewers_required", 2) < 2:
        raise ValidationError(
            {"reviewers_required": ["Annex III 1(a) needs at least two separate verifications (Art. 14(5))."]}
        )
    labels = set(system.labels)
    unknown = [label for label in values.get("always_review_labels") or [] if label not in labels]
    if unknown:
        raise ValidationError({"always_review_labels": [f"not in the system's labels: {', '.join(unknown)}"]})


@transaction.atomic
def system_create(*, actor: Any, slug: str, name: str, labels: list[str], **fields: Any) -> AISystem:
    """Register an AI system. A prohibited tier blocks it at once (Art. 5)."""
    system = AISystem(slug=slug, name=name, labels=labels, **fields)
    if system.risk_tier == RiskTier.PROHIBITED:
        system.status = SystemStatus.BLOCKED
        system.status_changed_at = timezone.now()
    if system.positive_label and system.positive_label not in labels:
        raise ValidationError({"positive_label": ["must be one of the labels"]})
    system.full_clean()
    system._history_user = actor  # type: ignore[attr-defined]
    system.save()
    record_event("system.created", actor=actor, obj=system, system_id=system.pk,
                 after=snapshot(system, ("slug", *SYSTEM_FIELDS, "status")))
    if system.status == SystemStatus.BLOCKED:
        record_event("system.blocked", actor=actor, obj=system, system_id=system.pk,
                     reason="Declared tier is prohibited (Art. 5).")
    return system


@transaction.atomic
def system_update(*, actor: Any, system: AISystem, changes: dict[str, Any], reason: str = "") -> AISystem:
    """Change a system's registration; a prohibited tier blocks it."""
    system = AISystem.objects.select_for_update().get(pk=system.pk)
    before = snapshot(system, [*changes])
    new_labels = changes.get("labels", system.labels)
    positive = changes.get("positive_label", system.positive_label)
    if positive and positive not in new_labels:
        raise ValidationError({"positive_label": ["must be one of the labels"]})
    changed = apply_changes(system, changes, actor)
    if system.risk_tier == RiskTier.PROHIBITED and system.status != SystemStatus.BLOCKED:
        system.status = SystemStatus.BLOCKED
        system.status_changed_at = timezone.now()
        system._history_user = actor  # type: ignore[attr-defined]
        system.save(update_fields=["status", "status_changed_at", "updated_at"])
        record_event("system.blocked", actor=actor, obj=system, system_id=system.pk,
                     reason=reason or "Tier is prohibited (Art. 5).")
    if changed:
        record_event("system.updated", actor=actor, obj=system, system_id=system.pk, reason=reason,
                     before={k: before[k] for k in changed}, after=snapshot(system, changed))
    return system


@transaction.atomic
def system_halt(*, actor: Any, system: AISystem, reason: str) -> AISystem:
    """The Art. 14(4)(e) stop button: every case goes to humans, nothing is auto-accepted."""
    if not reason.strip():
        raise ValidationError({"reason": ["A reason is required to halt a system."]})
    system = AISystem.objects.select_for_update().get(pk=system.pk)
    if system.status == SystemStatus.BLOCKED:
        raise ValidationError({"status": ["A blocked (prohibited) system cannot be halted or resumed."]})
    if system.status != SystemStatus.HALTED:
        before = system.status
        system.status = SystemStatus.HALTED
        system.status_reason = reason
        system.status_changed_at = timezone.now()
        system._history_user = actor  # type: ignore[attr-defined]
        system.save(update_fields=["status", "status_reason", "status_changed_at", "updated_at"])
        record_event("system.halted", actor=actor, obj=system, system_id=system.pk, reason=reason,
                     before={"status": before}, after={"status": system.status})
    return system


@transaction.atomic
def system_resume(*, actor: Any, system: AISystem, reason: str) -> AISystem:
    if not reason.strip():
        raise ValidationError({"reason": ["A reason is required to resume a system."]})
    system = AISystem.objects.select_for_update().get(pk=system.pk)
    if system.status == SystemStatus.BLOCKED:
        raise ValidationError({"status": ["A blocked (prohibited) system cannot be halted or resumed."]})
    if system.status != SystemStatus.ACTIVE:
        before = system.status
        system.status = SystemStatus.ACTIVE
        system.status_reason = reason
        system.status_changed_at = timezone.now()
        system._history_user = actor  # type: ignore[attr-defined]
        system.save(update_fields=["status", "status_reason", "status_changed_at", "updated_at"])
        record_event("system.resumed", actor=actor, obj=system, system_id=system.pk, reason=reason,
                     before={"status": before}, after={"status": system.status})
    return system


@transaction.atomic
def intervention_point_create(*, actor: Any, system: AISystem, slug: str, name: str, **rules: Any) -> InterventionPoint:
    if system.is_remote_biometric:
        rules.setdefault("reviewers_required", 2)
    _validate_point_rules(system, rules)
    point = InterventionPoint(system=system, slug=slug, name=name, version=1, **rules)
    point.full_clean()
    point._history_user = actor  # type: ignore[attr-defined]
    point.save()
    record_event("intervention_point.created", actor=actor, obj=point, system_id=system.pk,
                 after=snapshot(point, ("slug", *ROUTING_FIELDS, "version")))
    return point


@transaction.atomic
def intervention_point_update(
    *, actor: Any, point: InterventionPoint, changes: dict[str, Any], reason: str = ""
) -> InterventionPoint:
    """Change routing rules; any change bumps ``version`` (cases record the version that routed them)."""
    point = InterventionPoint.objects.select_for_update().select_related("system").get(pk=point.pk)
    merged = {name: changes.get(name, getattr(point, name)) for name in ROUTING_FIELDS}
    _validate_point_rules(point.system, merged)
    before = snapshot(point, [*changes, "version"])
    changed = [name for name, value in changes.items() if getattr(point, name) != value]
    if changed:
        apply_changes(point, {**{k: changes[k] for k in changed}, "version": point.version + 1}, actor)
        record_event("intervention_point.updated", actor=actor, obj=point, system_id=point.system_id,
                     reason=reason, before={k: before[k] for k in [*changed, "version"]},
                     after=snapshot(point, [*changed, "version"]))
    return point
