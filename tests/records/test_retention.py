"""Retention and legal hold: the six-month floor, holds that block purges, and a purge that
exports first, then erases case data, history rows and event payloads while the chain verifies."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from audit.selectors import verify_chain
from audit.services import checkpoint_sign, seal_pending
from records.models import LegalHold, PurgeRun
from records.retention import PurgeRefused, purge_expired, purge_system, retention_set
from records.selectors import active_legal_holds
from records.services import legal_hold_place, legal_hold_release
from records.tasks import purge_expired_task
from reviews.models import AISystem, Case, Decision
from tests.audit.evidence_helpers import (  # noqa: F401
    audit_key_fixture,
    decide_by,
    ingest_case,
    integration_for,
    media_root_fixture,
    read_lines,
    run_verifier,
    write_public_key,
)
from tests.reviews.factories import make_system_with_point
from tests.reviews.queue_helpers import make_reviewer, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("audit_key", "media_root")]

LATER = dt.timedelta(days=400)  # "now" for a purge: far enough after the cases were made


def _payload(event: AuditEvent) -> dict[str, Any]:
    return json.loads(event.payload)


@pytest.fixture
def scoring() -> AISystem:
    system, _ = make_system_with_point("credit-scoring", "loan-review", confidence_below=0.8)
    return system


@pytest.fixture
def cases(scoring: AISystem) -> list[Case]:
    """Two auto-accepted cases and one reviewed by a person (so it has decision history)."""
    integration = integration_for(scoring.slug)
    made = [
        ingest_case(integration, scoring.slug, "loan-review", "app-1", input={"name": "Ada", "amount": 1200},
                    subject={"gender": "f"}),
        ingest_case(integration, scoring.slug, "loan-review", "app-2", input={"name": "Bob", "amount": 900}),
        ingest_case(integration, scoring.slug, "loan-review", "app-3", confidence=0.5,
                    input={"name": "Cyd", "amount": 50000}, subject={"gender": "x"}),
    ]
    decide_by(made[2], make_reviewer(systems=[scoring]))
    seal_pending()
    return [Case.objects.get(pk=case.pk) for case in made]


# --- Retention period -------------------------------------------------------------------------


def test_retention_below_six_months_is_refused_naming_the_field(scoring: AISystem) -> None:
    officer = make_user("compliance_officer")
    with pytest.raises(ValidationError) as refused:
        retention_set(actor=officer, system=scoring, days=90)
    assert "retention_days" in refused.value.message_dict
    assert "183" in refused.value.message_dict["retention_days"][0]
    with pytest.raises(ValidationError):
        retention_set(actor=officer, system=scoring, days="365")
    retention_set(actor=officer, system=scoring, days=400, reason="Contract requires 400 days.")
    scoring.refresh_from_db()
    assert scoring.retention_days == 400
    event = AuditEvent.objects.get(action="system.updated", system_id=scoring.pk)
    assert _payload(event)["after"] == {"retention_days": 400} and event.actor_id == officer.pk


def test_the_database_refuses_a_retention_below_six_months(scoring: AISystem) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        AISystem.objects.filter(pk=scoring.pk).update(retention_days=30)


def test_retention_api_is_refused_below_the_floor(api_client_for: Any, scoring: AISystem) -> None:
    response = api_client_for("compliance_officer").patch(f"/api/v1/systems/{scoring.slug}/",
                                                          {"retention_days": 100}, format="json")
    assert response.status_code == 400 and "retention_days" in response.json()


# --- Refusals ---------------------------------------------------------------------------------


def test_purge_inside_the_six_month_floor_is_refused(scoring: AISystem, cases: list[Case]) -> None:
    now = timezone.now()
    with pytest.raises(PurgeRefused) as refused:
        purge_system(actor=None, system=scoring, cutoff=now - dt.timedelta(days=30), now=now)
    assert refused.value.code == "retention_floor"
    assert "six months" in refused.value.message
    assert not PurgeRun.objects.exists()
    assert Case.objects.get(pk=cases[0].pk).input["name"] == "Ada"


def test_purge_inside_the_systems_longer_retention_is_refused(scoring: AISystem, cases: list[Case]) -> None:
    retention_set(actor=None, system=scoring, days=730)
    now = timezone.now() + LATER
    with pytest.raises(PurgeRefused) as refused:
        purge_system(actor=None, system=scoring, cutoff=now - dt.timedelta(days=200), now=now)
    assert refused.value.code == "retention_period" and "730 days" in refused.value.message
    # The default cutoff (the system's own retention) keeps everything younger than two years.
    assert purge_system(actor=None, system=scoring, now=now) is None


@pytest.mark.parametrize("scope", ["system", "global"])
def test_a_legal_hold_blocks_the_purge_until_released(scoring: AISystem, cases: list[Case], scope: str) -> None:
    officer = make_user("compliance_officer")
    hold = legal_hold_place(actor=officer, system=scoring if scope == "system" else None,
                            reason="Litigation: applicant complaint", reference="LIT-2026-7")
    placed = AuditEvent.objects.get(action="audit.legal_hold_placed")
    assert placed.actor_id == officer.pk and placed.reason == "Litigation: applicant complaint"
    assert placed.system_id == (scoring.pk if scope == "system" else None)
    assert list(active_legal_holds(system=scoring)) == [hold]

    now = timezone.now() + LATER
    with pytest.raises(PurgeRefused) as refused:
        purge_system(actor=None, system=scoring, now=now)
    assert refused.value.code == "legal_hold"
    assert "legal hold" in refused.value.message and "LIT-2026-7" in refused.value.message
    assert Case.objects.get(pk=cases[0].pk).payload_purged_at is None
    # The nightly task skips the held system and says so.
    assert purge_expired(now=now)["held"] == [scoring.slug]

    legal_hold_release(actor=officer, hold=hold, reason="Case settled.")
    released = AuditEvent.objects.get(action="audit.legal_hold_released")
    assert released.reason == "Case settled." and released.actor_id == officer.pk
    with pytest.raises(ValidationError, match="already released"):
        legal_hold_release(actor=officer, hold=hold, reason="again")
    assert purge_system(actor=None, system=scoring, now=now) is not None


def test_a_hold_on_another_system_does_not_block(scoring: AISystem, cases: list[Case]) -> None:
    other, _ = make_system_with_point("hiring", "cv-screen")
    legal_hold_place(actor=None, system=other, reason="Investigation")
    assert purge_system(actor=None, system=scoring, now=timezone.now() + LATER) is not None


def test_a_hold_needs_a_reason() -> None:
    with pytest.raises(ValidationError) as refused:
        legal_hold_place(actor=None, reason="  ")
    assert "reason" in refused.value.message_dict
    assert not LegalHold.objects.exists()


# --- A permitted purge ------------------------------------------------------------------------


def test_permitted_purge_exports_then_erases_and_the_chain_still_verifies(
    scoring: AISystem, cases: list[Case], media_root: Path, tmp_path: Path
) -> None:
    checkpoint_sign()  # a signed checkpoint over the events about to be purged
    seal_pending()
    case_ids = [case.pk for case in cases]
    event_ids = list(AuditEvent.objects.filter(case_id__in=case_ids).values_list("pk", flat=True))
    decision_ids = list(Decision.objects.filter(case_id__in=case_ids).values_list("pk", flat=True))
    assert Case.history.filter(id__in=case_ids).exists() and decision_ids
    officer = make_user("compliance_officer")

    run = purge_system(actor=officer, system=scoring, now=timezone.now() + LATER, reason="Yearly purge")
    assert run is not None
    assert (run.cases_purged, run.events_purged) == (3, len(event_ids))
    assert run.history_rows_deleted >= 4  # three cases' histories and the decision's

    # 1. The export exists, its digest is recorded in the run and in the audit event.
    path = media_root / run.export_path
    assert path.exists() and run.export_path.startswith("audit-exports/purge-credit-scoring-")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert run.export_sha256 == digest and run.export_bytes == path.stat().st_size
    purged_event = AuditEvent.objects.get(action="audit.purged")
    data = _payload(purged_event)["data"]
    assert data["export_sha256"] == digest and data["cases"] == 3 and purged_event.actor_id == officer.pk
    assert purged_event.reason == "Yearly purge" and purged_event.system_id == scoring.pk

    # 2. The export holds what was erased, and verifies offline.
    lines = read_lines(path)
    manifest = lines[0]
    assert manifest["kind"] == "purge" and manifest["purge"]["cases"] == 3
    archived = {line["external_id"]: line for line in lines if line["record"] == "case"}
    assert archived["app-1"]["input"] == {"name": "Ada", "amount": 1200}
    assert archived["app-1"]["subject"] == {"gender": "f"}
    history = [line for line in lines if line["record"] == "history"]
    assert {line["model"] for line in history} == {"case", "decision"}
    result = run_verifier(path, "--key", str(write_public_key(tmp_path)["pem"]))
    assert result.returncode == 0, result.stdout
    exported_payloads = [line for line in lines if line["record"] == "event" and line["payload"] is not None]
    assert len(exported_payloads) == len(event_ids)

    # 3. Then it erased: case data, history rows, event payloads.
    for case in Case.objects.filter(pk__in=case_ids):
        assert case.input == {} and case.subject == {} and case.payload_purged_at is not None
        assert case.input_hash  # the reference by hash stays
    assert not Case.history.filter(id__in=case_ids).exists()
    assert not Decision.history.filter(id__in=decision_ids).exists()
    assert Decision.objects.filter(pk__in=decision_ids).count() == len(decision_ids)
    purged = AuditEvent.objects.filter(pk__in=event_ids)
    assert all(event.payload is None and event.payload_sha256 for event in purged)
    assert AuditEvent.objects.filter(payload__isnull=False, case_id__isnull=True).exists()  # others untouched

    # 4. The chain, with its checkpoint, still verifies.
    seal_pending()
    result = verify_chain()
    assert result.ok, result.problem
    assert result.checkpoints == 1

    # 5. Nothing is left to purge: a second run does nothing.
    assert purge_system(actor=None, system=scoring, now=timezone.now() + LATER) is None


def test_purge_takes_bounded_runs_oldest_first(scoring: AISystem, cases: list[Case]) -> None:
    now = timezone.now() + LATER
    first = purge_system(actor=None, system=scoring, now=now, max_cases=2)
    assert first is not None and first.cases_purged == 2
    assert Case.objects.get(pk=cases[2].pk).payload_purged_at is None
    second = purge_system(actor=None, system=scoring, now=now, max_cases=2)
    assert second is not None and second.cases_purged == 1
    assert first.export_path != second.export_path
    assert AuditEvent.objects.filter(action="audit.purged").count() == 2


def test_open_cases_are_not_purged(scoring: AISystem) -> None:
    integration = integration_for(scoring.slug)
    queued = ingest_case(integration, scoring.slug, "loan-review", "app-9", confidence=0.3)
    assert purge_system(actor=None, system=scoring, now=timezone.now() + LATER) is None
    assert Case.objects.get(pk=queued.pk).payload_purged_at is None


def test_nightly_task_purges_every_system_as_the_system_actor(scoring: AISystem, cases: list[Case],
                                                              monkeypatch: Any) -> None:
    # hitl_portal.actors caches the service account's id across tests; SQLite reuses
    # ids of rolled-back rows, so start from a clean cache.
    monkeypatch.setattr("hitl_portal.actors._system_user_id", None)
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() + LATER)
    report = purge_expired_task.delay().get()
    assert report["runs"] == 1 and report["cases"] == 3 and report["more"] is False
    event = AuditEvent.objects.get(action="audit.purged")
    assert event.actor_type == "system" and event.actor_name == "hitl-system"


def test_purge_command(scoring: AISystem, cases: list[Case]) -> None:
    with pytest.raises(CommandError, match="six months"):
        call_command("purge_audit", "--system", scoring.slug, "--before", timezone.now().date().isoformat())
    with pytest.raises(CommandError, match="unknown system"):
        call_command("purge_audit", "--system", "nope")
    out = StringIO()
    call_command("purge_audit", "--all", stdout=out)
    assert "purge runs: 0" in out.getvalue()  # nothing is old enough yet


# --- Admin ------------------------------------------------------------------------------------


def test_admin_places_and_releases_holds_through_the_services(client: Any, scoring: AISystem) -> None:
    from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME

    admin_user = make_user("admin")
    client.force_login(admin_user)
    add = client.post(reverse("admin:records_legalhold_add"),
                      {"system": scoring.pk, "reason": "Authority request", "reference": "REQ-1"})
    assert add.status_code == 302, add.content
    hold = LegalHold.objects.get()
    assert hold.placed_by == admin_user and hold.history.first().history_user == admin_user
    assert AuditEvent.objects.filter(action="audit.legal_hold_placed", actor_id=admin_user.pk).count() == 1
    changelist = reverse("admin:records_legalhold_changelist")
    assert client.get(changelist).status_code == 200
    client.post(changelist, {"action": "release_holds", ACTION_CHECKBOX_NAME: [hold.pk], "post": "yes",
                             "reason": "Request closed"})
    hold.refresh_from_db()
    assert hold.released_at is not None and hold.release_reason == "Request closed"
    assert AuditEvent.objects.filter(action="audit.legal_hold_released").count() == 1
    assert client.get(reverse("admin:records_purgerun_changelist")).status_code == 200
    assert client.get(reverse("admin:audit_checkpoint_changelist")).status_code == 200
