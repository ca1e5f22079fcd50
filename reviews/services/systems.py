"""AI systems and intervention points: registration, rule changes, halt and resume."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.services import record_event
from hitl_portal.actors import Actor
from reviews.content import validate_decision_fields, validate_display
from reviews.models import (
    ROUTING_FIELDS,
    AISystem,
    CaseKind,
    InterventionPoint,
    RiskTier,
    SlaBreachAction,
    SystemStatus,
    new_sampling_salt,
)
from reviews.routing import high_stakes_errors
from reviews.rules import clean_bias_thresholds
from reviews.services.common import apply_changes, snapshot
from reviews.services.kinds import point_defaults, validate_point_kind_rules
from reviews.signals import PROFILE_FIELDS, system_profile_changed

SYSTEM_FIELDS = (
    "name", "purpose", "provider", "role", "sector", "declared_tier", "annex_iii_area", "labels",
    "positive_label", "non_match_label", "required_trainings", "protected_attributes", "retention_days",
    "is_public_body", "bias_thresholds", "kpi_targets", "share_cases_between_integrations",
)


# Annex III high-risk use cases as "<area><point>": area 2 (critical infrastructure)
# has no lettered points, every other area does.
ANNEX_III_POINTS: frozenset[str] = frozenset(
    ["1a", "1b", "1c", "2", "3a", "3b", "3c", "3d", "4a", "4b", "5a", "5b", "5c", "5d",
     "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c", "7d", "8a", "8b"]
)


def _string_list_problem(values: Any, *, allow_empty: bool) -> str | None:
    """Why ``values`` is not a list of unique non-empty strings (``None`` when it is)."""
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        return "must be a list of strings"
    if not values and not allow_empty:
        return "must not be empty"
    if any(not v.strip() for v in values):
        return "must not contain empty strings"
    if len(set(values)) != len(values):
        return "must not contain duplicates"
    return None


def _validate_system_values(values: dict[str, Any]) -> None:
    """Registration rules for the fields present in ``values`` (the label space, the Annex III point)."""
    errors: dict[str, list[str]] = {}
    if "labels" in values:
        problem = _string_list_problem(values["labels"], allow_empty=False)
        if problem:
            errors["labels"] = [problem]
    if "protected_attributes" in values:
        problem = _string_list_problem(values["protected_attributes"], allow_empty=True)
        if problem:
            errors["protected_attributes"] = [problem]
    if "required_trainings" in values:
        problem = _string_list_problem(values["required_trainings"], allow_empty=True)
        if problem:
            errors["required_trainings"] = [problem]
    area = values.get("annex_iii_area")
    if area and area not in ANNEX_III_POINTS:
        errors["annex_iii_area"] = [
            "must be an Annex III point such as 1a or 5b (areas 1-8; area 2 has no letter)"
        ]
    if errors:
        raise ValidationError(errors)
    if "bias_thresholds" in values:
        values["bias_thresholds"] = clean_bias_thresholds(values["bias_thresholds"] or {})


def _clean_review_content(values: dict[str, Any]) -> None:
    """Normalise the display configuration and decision fields in ``values`` (in place), or refuse them."""
    if "display" in values:
        values["display"] = validate_display(values["display"])
    if "decision_fields" in values:
        values["decision_fields"] = validate_decision_fields(values["decision_fields"])


def _validate_point_rules(system: AISystem, values: dict[str, Any]) -> None:
    """Rules the database cannot express (they depend on the system, or on the point's kind)."""
    validate_point_kind_rules(values)
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
    if "high_stakes" in values:
        problems = high_stakes_errors(values["high_stakes"] if values["high_stakes"] is not None else [])
        if problems:
            raise ValidationError({"high_stakes": problems})


# system_create, system_update and system_halt keep actor: Any while the compliance app
# passes request.user (User | AnonymousUser); the other services take an Actor.
@transaction.atomic
def system_create(*, actor: Any, slug: str, name: str, labels: list[str], **fields: Any) -> AISystem:
    """Register an AI system. A prohibited tier blocks it at once (Art. 5)."""
    if "bias_thresholds" in fields:
        fields["bias_thresholds"] = clean_bias_thresholds(fields["bias_thresholds"] or {})
    _validate_system_values({"labels": labels, **fields})
    if AISystem.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": ["An AI system with this slug already exists."]})
    system = AISystem(slug=slug, name=name, labels=labels, **fields)
    if system.risk_tier == RiskTier.PROHIBITED:
        system.status = SystemStatus.BLOCKED
        system.status_changed_at = timezone.now()
    if system.positive_label and system.positive_label not in labels:
        raise ValidationError({"positive_label": ["must be one of the labels"]})
    if system.non_match_label and system.non_match_label not in labels:
        raise ValidationError({"non_match_label": ["must be one of the labels"]})
    system.full_clean()
    system._history_user = actor  # type: ignore[attr-defined]
    try:
        # A savepoint, so that losing a race for the slug is a 400, not a broken transaction.
        with transaction.atomic():
            system.save()
    except IntegrityError as exc:
        raise ValidationError({"slug": ["An AI system with this slug already exists."]}) from exc
    record_event("system.created", actor=actor, obj=system, system_id=system.pk,
                 after=snapshot(system, ("slug", *SYSTEM_FIELDS, "status")))
    if system.status == SystemStatus.BLOCKED:
        record_event("system.blocked", actor=actor, obj=system, system_id=system.pk,
                     reason="Declared tier is prohibited (Art. 5).")
    system_profile_changed.send(sender=AISystem, system=system, actor=actor, fields=PROFILE_FIELDS)
    return system


@transaction.atomic
def system_update(*, actor: Any, system: AISystem, changes: dict[str, Any], reason: str = "") -> AISystem:
    """Change a system's registration; a prohibited tier blocks it.

    A blocked system whose effective tier is no longer prohibited (a corrected
    declaration) is not simply reopened: it becomes *halted*, so every case still
    goes to humans until someone resumes it deliberately.
    """
    if "slug" in changes:
        raise ValidationError({"slug": ["The slug identifies the system to integrations and cannot change."]})
    unknown = sorted(set(changes) - set(SYSTEM_FIELDS))
    if unknown:
        raise ValidationError({name: ["not a writable field of an AI system"] for name in unknown})
    changes = dict(changes)
    _validate_system_values(changes)  # also cleans bias_thresholds in place (20.0 → 20)
    system = AISystem.objects.select_for_update().get(pk=system.pk)
    before = snapshot(system, [*changes])
    new_labels = changes.get("labels", system.labels)
    positive = changes.get("positive_label", system.positive_label)
    if positive and positive not in new_labels:
        raise ValidationError({"positive_label": ["must be one of the labels"]})
    non_match = changes.get("non_match_label", system.non_match_label)
    if non_match and non_match not in new_labels:
        raise ValidationError({"non_match_label": ["must be one of the labels"]})
    if "labels" in changes:
        _check_points_keep_labels(system, set(new_labels))
    if (changes.get("annex_iii_area") or "").lower() == "1a" and not system.is_remote_biometric:
        _check_points_allow_remote_biometric(system)
    was_blocked = system.status == SystemStatus.BLOCKED
    changed = apply_changes(system, changes, actor)
    if system.risk_tier == RiskTier.PROHIBITED and system.status != SystemStatus.BLOCKED:
        system.status = SystemStatus.BLOCKED
        system.status_changed_at = timezone.now()
        system._history_user = actor  # type: ignore[attr-defined]
        system.save(update_fields=["status", "status_changed_at", "updated_at"])
        record_event("system.blocked", actor=actor, obj=system, system_id=system.pk,
                     reason=reason or "Tier is prohibited (Art. 5).")
    elif was_blocked and "declared_tier" in changed and system.risk_tier != RiskTier.PROHIBITED:
        system.status = SystemStatus.HALTED
        system.status_reason = reason or "No longer a prohibited tier: halted until resumed."
        system.status_changed_at = timezone.now()
        system._history_user = actor  # type: ignore[attr-defined]
        system.save(update_fields=["status", "status_reason", "status_changed_at", "updated_at"])
        record_event("system.halted", actor=actor, obj=system, system_id=system.pk, reason=system.status_reason,
                     before={"status": SystemStatus.BLOCKED}, after={"status": system.status})
    if changed:
        record_event("system.updated", actor=actor, obj=system, system_id=system.pk, reason=reason,
                     before={k: before[k] for k in changed}, after=snapshot(system, changed))
    if PROFILE_FIELDS & set(changed):
        system_profile_changed.send(sender=AISystem, system=system, actor=actor,
                                    fields=frozenset(PROFILE_FIELDS & set(changed)))
    return system


def _check_points_allow_remote_biometric(system: AISystem) -> None:
    """Moving a system into Annex III 1(a) must not leave a point that breaks its rules."""
    probe = AISystem(annex_iii_area="1a", labels=system.labels)
    for point in InterventionPoint.objects.filter(system=system):
        try:
            _validate_point_rules(probe, {**{name: getattr(point, name) for name in ROUTING_FIELDS},
                                          "kind": point.kind})
        except ValidationError as exc:
            problems = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())
            raise ValidationError({"annex_iii_area": [
                f"intervention point {point.slug!r} breaks the Annex III 1(a) rules first ({problems})"
            ]}) from exc


def _check_points_keep_labels(system: AISystem, labels: set[str]) -> None:
    """Refuse dropping a label that an intervention point still routes on."""
    for point in InterventionPoint.objects.filter(system=system).only("slug", "always_review_labels"):
        dropped = sorted(set(point.always_review_labels or []) - labels)
        if dropped:
            raise ValidationError({"labels": [
                f"intervention point {point.slug!r} still routes on: {', '.join(dropped)}"
            ]})


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
def system_resume(*, actor: Actor, system: AISystem, reason: str) -> AISystem:
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
def intervention_point_create(
    *, actor: Actor, system: AISystem, slug: str, name: str, **rules: Any
) -> InterventionPoint:
    if system.is_remote_biometric:
        rules.setdefault("reviewers_required", 2)
    point_defaults(rules.get("kind", CaseKind.CLASSIFICATION), rules)
    _clean_review_content(rules)
    _validate_point_rules(system, rules)
    duplicate = {"slug": ["This system already has an intervention point with this slug."]}
    if InterventionPoint.objects.filter(system=system, slug=slug).exists():
        raise ValidationError(duplicate)
    point = InterventionPoint(system=system, slug=slug, name=name, version=1, **rules)
    point.full_clean()
    point._history_user = actor  # type: ignore[attr-defined]
    try:
        with transaction.atomic():
            point.save()
    except IntegrityError as exc:
        raise ValidationError(duplicate) from exc
    record_event("intervention_point.created", actor=actor, obj=point, system_id=system.pk,
                 after=snapshot(point, ("slug", "kind", *ROUTING_FIELDS, "version")))
    return point


@transaction.atomic
def intervention_point_update(
    *, actor: Actor, point: InterventionPoint, changes: dict[str, Any], reason: str = ""
) -> InterventionPoint:
    """Change routing rules, the display configuration or the decision fields; any change bumps ``version``.

    Cases record the version that routed them.
    """
    unknown = sorted(set(changes) - set(ROUTING_FIELDS))
    if unknown:
        raise ValidationError({name: ["not a writable rule of an intervention point"] for name in unknown})
    changes = dict(changes)
    _clean_review_content(changes)
    point = InterventionPoint.objects.select_for_update().select_related("system").get(pk=point.pk)
    merged = {name: changes.get(name, getattr(point, name)) for name in ROUTING_FIELDS}
    _validate_point_rules(point.system, {**merged, "kind": point.kind})
    before = snapshot(point, [*changes, "version"])
    changed = [name for name, value in changes.items() if getattr(point, name) != value]
    if changed:
        apply_changes(point, {**{k: changes[k] for k in changed}, "version": point.version + 1}, actor)
        record_event("intervention_point.updated", actor=actor, obj=point, system_id=point.system_id,
                     reason=reason, before={k: before[k] for k in [*changed, "version"]},
                     after=snapshot(point, [*changed, "version"]))
    return point


@transaction.atomic
def intervention_point_rotate_salt(*, actor: Actor, point: InterventionPoint, reason: str) -> InterventionPoint:
    """Give a point a new secret sampling salt (after a suspected leak, or routinely).

    Which cases fall into the random sample changes from now on; cases already
    routed keep their routing. The rules ``version`` is not bumped (no rule
    changed), and neither salt enters the audit trail or history: the event
    records who rotated it, when and why.
    """
    if not reason.strip():
        raise ValidationError({"reason": ["A reason is required to rotate the sampling salt."]})
    point = InterventionPoint.objects.select_for_update().select_related("system").get(pk=point.pk)
    previous_rotation = point.salt_rotated_at
    point.sampling_salt = new_sampling_salt()
    point.salt_rotated_at = timezone.now()
    point._history_user = actor  # type: ignore[attr-defined]
    point.save(update_fields=["sampling_salt", "salt_rotated_at", "updated_at"])
    record_event(
        "intervention_point.salt_rotated", actor=actor, obj=point, system_id=point.system_id, reason=reason,
        before={"salt_rotated_at": previous_rotation.isoformat() if previous_rotation else None},
        after={"salt_rotated_at": point.salt_rotated_at.isoformat()},
    )
    return point
