"""Obligations: generated from the catalog by tier × role, then worked on (status, owner, due, evidence).

``obligations_sync`` makes a system's obligations match what the current catalog
says applies to it. Nothing is deleted: a row that stops applying (after a
re-classification) is marked not applicable and kept with its evidence; it comes
back if the requirement applies again. Every change is an ``obligation.updated``
event on the obligation, in the same transaction.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from simple_history.utils import bulk_create_with_history

from audit.canonical import canonical_json, sha256_hex
from audit.services import bulk_record_events, record_event
from compliance.classification import SystemProfile, applicable_date, requirement_applies
from compliance.models import EvidenceKind, Obligation, ObligationEvidence, ObligationStatus, Requirement
from compliance.selectors.catalog import current_catalog
from compliance.selectors.evidence import portal_evidence
from hitl_portal.roles import ADMIN, COMPLIANCE_OFFICER, MANAGER, user_role
from reviews.models import AISystem

# Who may own an obligation: the people who answer for compliance work.
OWNER_ROLES = frozenset({COMPLIANCE_OFFICER, MANAGER, ADMIN})
MAX_EVIDENCE_BYTES = 20 * 1024 * 1024
RETIRED_NOTE = "No longer applies to this system's classification."

_UNSET: Any = object()


@dataclass
class SyncResult:
    created: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    reopened: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.retired or self.reopened or self.moved)


def _state(obligation: Obligation) -> dict[str, Any]:
    return {
        "status": obligation.status,
        "owner": obligation.owner.get_username() if obligation.owner_id and obligation.owner else None,
        "due": obligation.due_date,
        "applicable": obligation.applicable,
        "note": obligation.note,
    }


@transaction.atomic
def obligations_sync(*, actor: Any, system: AISystem) -> SyncResult:
    """Generate the system's missing obligations and retire those that no longer apply."""
    system = AISystem.objects.select_for_update().get(pk=system.pk)
    catalog = current_catalog()
    profile = SystemProfile.from_system(system)
    applicable = [r for r in Requirement.objects.filter(catalog=catalog).order_by("position")
                  if requirement_applies(r, profile)]
    # of=("self",): the owner join is nullable, and only obligation rows need the lock.
    existing = list(Obligation.objects.select_for_update(of=("self",)).filter(system=system)
                    .select_related("requirement", "owner"))
    # Newest catalog row of each ref wins when an older version left obligations behind.
    by_ref: dict[str, Obligation] = {}
    for row in sorted(existing, key=lambda o: o.requirement.catalog_id):
        by_ref[row.requirement.ref] = row

    result = SyncResult()
    events: list[dict[str, Any]] = []
    new_rows: list[Obligation] = []
    wanted = {r.ref for r in applicable}
    for requirement in applicable:
        obligation = by_ref.get(requirement.ref)
        if obligation is None:
            new_rows.append(Obligation(system=system, requirement=requirement, status=ObligationStatus.OPEN,
                                       due_date=applicable_date(requirement, profile, catalog.date_basis)))
            continue
        changed: list[str] = []
        before = _state(obligation)
        if obligation.requirement_id != requirement.pk:
            obligation.requirement = requirement
            changed.append("requirement")
            result.moved.append(requirement.ref)
        if not obligation.applicable:
            obligation.applicable = True
            if obligation.status == ObligationStatus.NOT_APPLICABLE and obligation.note == RETIRED_NOTE:
                obligation.status = ObligationStatus.OPEN
                obligation.note = ""
                changed += ["status", "note"]
            obligation.due_date = applicable_date(requirement, profile, catalog.date_basis)
            changed += ["applicable", "due_date"]
            result.reopened.append(requirement.ref)
        if changed:
            obligation._history_user = actor  # type: ignore[attr-defined]
            obligation.save(update_fields=[*dict.fromkeys(changed), "updated_at"])
            events.append(_event(actor, system, obligation, "reopened" if "applicable" in changed else
                                 "catalog_updated", before, catalog.version))
    for ref, obligation in by_ref.items():
        if ref in wanted or not obligation.applicable:
            continue
        before = _state(obligation)
        obligation.applicable = False
        update = ["applicable", "updated_at"]
        if obligation.status != ObligationStatus.MET:
            obligation.status = ObligationStatus.NOT_APPLICABLE
            obligation.note = RETIRED_NOTE
            update += ["status", "note"]
        obligation._history_user = actor  # type: ignore[attr-defined]
        obligation.save(update_fields=update)
        result.retired.append(ref)
        events.append(_event(actor, system, obligation, "retired", before, catalog.version))
    if new_rows:
        created = bulk_create_with_history(new_rows, Obligation, default_user=actor)
        if any(o.pk is None for o in created):
            refs = [o.requirement.ref for o in new_rows]
            created = list(Obligation.objects.filter(system=system, requirement__ref__in=refs,
                                                     requirement__catalog=catalog).select_related("requirement"))
        for obligation in created:
            result.created.append(obligation.requirement.ref)
            events.append(_event(actor, system, obligation, "generated", None, catalog.version))
    if events:
        bulk_record_events(events)
    return result


def _event(actor: Any, system: AISystem, obligation: Obligation, change: str, before: dict[str, Any] | None,
           catalog_version: str) -> dict[str, Any]:
    return {
        "action": "obligation.updated", "actor": actor, "obj": obligation, "system_id": system.pk,
        "object_label": f"{system.slug}:{obligation.requirement.ref}",
        "data": {"change": change, "ref": obligation.requirement.ref, "catalog": catalog_version},
        "before": before, "after": _state(obligation),
    }


@dataclass
class NewEvidence:
    """Evidence to attach: a link, an uploaded file, or a snapshot of what the portal produces."""

    kind: str
    title: str = ""
    url: str = ""
    file: UploadedFile | None = None


def _resolve_owner(owner: Any) -> Any:
    if owner is None:
        return None
    User = get_user_model()
    if isinstance(owner, str):
        found = User.objects.filter(username=owner, is_active=True).first()
        if found is None:
            raise ValidationError({"owner": [f"no active user {owner!r}"]})
        owner = found
    if user_role(owner) not in OWNER_ROLES:
        raise ValidationError({"owner": ["must be a compliance officer, a manager or an admin"]})
    return owner


def _build_evidence(actor: Any, obligation: Obligation, item: NewEvidence) -> ObligationEvidence:
    ref = obligation.requirement.ref
    if item.kind == EvidenceKind.LINK:
        if not item.url:
            raise ValidationError({"evidence_url": ["a link needs a URL"]})
        return ObligationEvidence(obligation=obligation, kind=item.kind, title=item.title or item.url[:200],
                                  url=item.url, added_by=actor)
    if item.kind == EvidenceKind.FILE:
        upload = item.file
        if upload is None:
            raise ValidationError({"evidence_file": ["no file uploaded"]})
        if upload.size is not None and upload.size > MAX_EVIDENCE_BYTES:
            raise ValidationError({"evidence_file": [f"larger than {MAX_EVIDENCE_BYTES // (1024 * 1024)} MB"]})
        digest = hashlib.sha256()
        for chunk in upload.chunks():
            digest.update(chunk)
        upload.seek(0)
        return ObligationEvidence(obligation=obligation, kind=item.kind, title=item.title or (upload.name or "")[:200],
                                  file=upload, sha256=digest.hexdigest(), added_by=actor)
    if item.kind == EvidenceKind.PORTAL:
        kind = obligation.requirement.evidence_kind
        snapshot = portal_evidence(obligation.system, kind) if kind else None
        if snapshot is None:
            raise ValidationError({"capture_portal_evidence": [f"the portal produces no evidence for {ref}"]})
        return ObligationEvidence(obligation=obligation, kind=item.kind, title=item.title or snapshot["title"],
                                  portal_kind=kind, snapshot=snapshot, sha256=sha256_hex(canonical_json(snapshot)),
                                  added_by=actor)
    raise ValidationError({"evidence": [f"unknown evidence kind {item.kind!r}"]})


@transaction.atomic
def obligation_update(
    *,
    actor: Any,
    obligation: Obligation,
    status: str = _UNSET,
    owner: Any = _UNSET,
    due_date: date | None = _UNSET,
    note: str = _UNSET,
    add_evidence: list[NewEvidence] | tuple[NewEvidence, ...] = (),
    reason: str = "",
) -> Obligation:
    """Change an obligation's status, owner, due date or note and attach evidence, audited as one event.

    Rules: ``met`` needs evidence (already attached or attached now); ``not_applicable``
    needs a reason (a note or the change reason); a retired obligation (no longer
    applicable after re-classification) keeps its status.
    """
    obligation = (Obligation.objects.select_for_update(of=("self",)).select_related("requirement", "system", "owner")
                  .get(pk=obligation.pk))
    before = _state(obligation)
    changes: dict[str, Any] = {}
    if status is not _UNSET and status != obligation.status:
        if status not in ObligationStatus.values:
            raise ValidationError({"status": [f"must be one of {', '.join(ObligationStatus.values)}"]})
        if not obligation.applicable:
            raise ValidationError({"status": ["this obligation no longer applies to the system's classification"]})
        changes["status"] = status
    if owner is not _UNSET:
        resolved = _resolve_owner(owner)
        if (resolved.pk if resolved else None) != obligation.owner_id:
            changes["owner"] = resolved
    if due_date is not _UNSET and due_date != obligation.due_date:
        changes["due_date"] = due_date
    if note is not _UNSET and note != obligation.note:
        changes["note"] = note
    new_evidence = [_build_evidence(actor, obligation, item) for item in add_evidence]

    target_status = changes.get("status", obligation.status)
    if ("status" in changes and target_status == ObligationStatus.MET
            and not new_evidence and not obligation.evidence.exists()):
        raise ValidationError({"status": ["attach evidence (a file, a link or the portal's own) before "
                                          "marking the obligation met"]})
    if ("status" in changes and target_status == ObligationStatus.NOT_APPLICABLE
            and not (reason.strip() or changes.get("note", obligation.note).strip())):
        raise ValidationError({"note": ["say why the obligation does not apply"]})

    if not changes and not new_evidence:
        return obligation
    for name, value in changes.items():
        setattr(obligation, name, value)
    if changes:
        obligation._history_user = actor  # type: ignore[attr-defined]
        obligation.full_clean(exclude=["system", "requirement"])
        obligation.save(update_fields=[*changes, "updated_at"])
    for evidence in new_evidence:
        evidence._history_user = actor  # type: ignore[attr-defined]
        evidence.save()
    after = _state(obligation)
    record_event(
        "obligation.updated", actor=actor, obj=obligation, system_id=obligation.system_id, reason=reason,
        object_label=f"{obligation.system.slug}:{obligation.requirement.ref}",
        before={k: before[k] for k in after if before[k] != after[k]},
        after={k: after[k] for k in after if before[k] != after[k]},
        data={"ref": obligation.requirement.ref, "change": "edited", "evidence_added": [
            {"id": e.pk, "kind": e.kind, "title": e.title, "url": e.url or None, "sha256": e.sha256 or None,
             "portal_kind": e.portal_kind or None}
            for e in new_evidence
        ]},
    )
    return obligation
