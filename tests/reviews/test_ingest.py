"""Case ingestion services: routing applied, history and audit written, refusals, batches."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from unittest import mock

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from reviews.api.serializers.cases import CaseSubmissionValidator
from reviews.models import AISystem, Case, CaseStatus, IdempotencyKey, InterventionPoint, Resolution, WebhookDelivery
from reviews.services.errors import CaseConflict
from reviews.services.idempotency import idempotency_purge
from reviews.services.ingest import BatchItem, SystemNotLinked, case_ingest_batch, case_ingest_screened
from reviews.services.systems import intervention_point_update, system_halt
from tests.reviews.factories import (
    ingest,
    make_system_with_point,
    submission,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def integration(make_user: Any) -> Any:
    make_system_with_point(confidence_below=0.7, sla_seconds=600, reviewers_required=2)
    return make_user("integration", "acme", systems=["credit-scoring"])


def events(case: Case) -> list[str]:
    return list(AuditEvent.objects.filter(case_id=case.pk).order_by("id").values_list("action", flat=True))


def validated(actor: Any, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    validator = CaseSubmissionValidator(actor=actor)
    validator.prime(bodies)
    out = []
    for body in bodies:
        data, errors = validator.validate(body)
        assert errors is None, errors
        out.append(data)
    return out


# --- Single case -----------------------------------------------------------------------------


def test_confident_case_is_auto_accepted_with_ai_label_and_audited(integration: Any) -> None:
    case = ingest(integration, confidence=0.95)
    case.refresh_from_db()
    assert case.status == CaseStatus.AUTO_ACCEPTED
    assert case.resolution == Resolution.AUTO_ACCEPTED
    assert case.final_label == "approve"
    assert case.decided_at is not None
    assert case.routed is False and case.routing_reasons == []
    assert case.submitted_by == integration
    assert events(case) == ["case.created", "case.auto_accepted"]
    created = AuditEvent.objects.get(case_id=case.pk, action="case.created")
    assert created.actor_name == "acme"
    payload = json.loads(created.payload)
    assert payload["data"]["input_hash"] == case.input_hash and len(case.input_hash) == 64
    # Personal data is referred to by hash, never copied.
    assert "Loan application" not in created.payload
    verdict = AuditEvent.objects.get(case_id=case.pk, action="case.auto_accepted")
    assert verdict.actor_type == "system"
    assert json.loads(verdict.payload)["data"]["final_label"] == "approve"
    history = Case.history.filter(id=case.pk)
    assert history.count() == 1
    assert history.get().history_user == integration


def test_uncertain_case_is_routed_with_sla_and_reviewers(integration: Any) -> None:
    before = timezone.now()
    case = ingest(integration, confidence=0.5)
    assert case.status == CaseStatus.QUEUED
    assert case.routed is True
    assert case.routing_reasons == ["confidence_below"]
    assert case.final_label is None and case.resolution is None
    assert case.reviewers_required == 2
    assert case.rules_version == 1
    assert before + dt.timedelta(seconds=600) <= case.sla_deadline <= timezone.now() + dt.timedelta(seconds=600)
    assert events(case) == ["case.created", "case.routed"]
    routed = json.loads(AuditEvent.objects.get(case_id=case.pk, action="case.routed").payload)
    assert routed["data"]["reasons"] == ["confidence_below"]
    assert routed["data"]["rules_version"] == 1
    assert Case.history.filter(id=case.pk).count() == 1


def test_case_records_the_rules_version_that_routed_it(integration: Any) -> None:
    point = InterventionPoint.objects.get(slug="loan-review")
    intervention_point_update(actor=None, point=point, changes={"confidence_below": 0.99})
    case = ingest(integration, confidence=0.95)
    assert case.rules_version == 2
    assert case.routing_reasons == ["confidence_below"]


def test_halted_system_routes_everything(integration: Any) -> None:
    system_halt(actor=None, system=AISystem.objects.get(slug="credit-scoring"), reason="Drift detected")
    case = ingest(integration, confidence=0.99)
    assert case.status == CaseStatus.QUEUED
    assert case.routing_reasons == ["system_halted"]


def test_prohibited_system_refuses(make_user: Any) -> None:
    make_system_with_point("social-scoring", "score", system_fields={"declared_tier": "prohibited"})
    actor = make_user("integration", systems=["social-scoring"])
    with pytest.raises(CaseConflict) as info:
        ingest(actor, system="social-scoring", point="score")
    assert info.value.code_name == "system_prohibited"
    assert Case.objects.count() == 0


def test_integration_not_linked_is_refused(integration: Any, make_user: Any) -> None:
    make_system_with_point("triage", "intake")
    with pytest.raises(SystemNotLinked):
        ingest(integration, system="triage", point="intake")
    stranger = make_user("integration", "stranger")
    with pytest.raises(SystemNotLinked):
        ingest(stranger)
    assert Case.objects.count() == 0


def test_duplicate_external_id_conflicts_with_existing_id(integration: Any) -> None:
    first = ingest(integration, external_id="dup-1")
    with pytest.raises(CaseConflict) as info:
        ingest(integration, external_id="dup-1", label="reject")
    assert info.value.code_name == "duplicate"
    assert info.value.extra == {"id": first.pk}
    assert Case.objects.count() == 1
    assert AuditEvent.objects.filter(action="case.created").count() == 1


def test_labeling_point_without_prediction_is_routed_blind(make_user: Any) -> None:
    make_system_with_point("images", "labeling", labels=["cat", "dog"], stage="labeling")
    actor = make_user("integration", systems=["images"])
    case = ingest(actor, system="images", point="labeling", label=None)
    assert case.routing_reasons == ["labeling"]
    assert case.blind is True
    assert case.prediction_label is None and case.prediction_confidence is None


def test_blind_sampling_is_deterministic_by_rate(make_user: Any) -> None:
    make_system_with_point(confidence_below=1.0, blind_review_rate=1.0)
    make_system_with_point(point="never-blind", confidence_below=1.0)
    actor = make_user("integration", systems=["credit-scoring"])
    assert ingest(actor, external_id="b-1", confidence=0.5).blind is True
    assert ingest(actor, point="never-blind", external_id="b-2", confidence=0.5).blind is False


def test_auto_accepted_case_with_callback_gets_a_webhook_delivery(integration: Any) -> None:
    case = ingest(integration, callback_url="https://example.org/hook")
    delivery = WebhookDelivery.objects.get(case=case)
    assert delivery.event == "case.auto_accepted"
    assert json.loads(delivery.body)["case"]["id"] == case.pk
    routed = ingest(integration, external_id="app-2", confidence=0.1, callback_url="https://example.org/hook")
    assert not WebhookDelivery.objects.filter(case=routed).exists()


# --- Batch ----------------------------------------------------------------------------------------


def test_batch_writes_cases_history_and_audit_in_bulk(integration: Any) -> None:
    bodies = [submission(external_id=f"b-{i}", confidence=0.9 if i % 2 else 0.1) for i in range(20)]
    with mock.patch("reviews.services.ingest.webhooks_enqueue") as enqueue:
        cases = case_ingest_batch(actor=integration, items=validated(integration, bodies))
    assert len(cases) == 20
    assert Case.objects.count() == 20
    assert Case.history.filter(history_type="+").count() == 20
    assert set(Case.history.values_list("history_user_id", flat=True)) == {integration.pk}
    assert AuditEvent.objects.filter(action="case.created").count() == 20
    assert AuditEvent.objects.filter(action="case.auto_accepted").count() == 10
    assert AuditEvent.objects.filter(action="case.routed").count() == 10
    # One webhook enqueue for the whole batch, with the auto-accepted cases.
    enqueue.assert_called_once()
    passed = enqueue.call_args.kwargs["cases"]
    assert sorted(c.external_id for c in passed) == sorted(f"b-{i}" for i in range(1, 20, 2))
    routed = Case.objects.get(external_id="b-0")
    assert routed.status == CaseStatus.QUEUED and routed.sla_deadline is not None


def test_batch_is_all_or_nothing_on_a_refusal(integration: Any) -> None:
    ingest(integration, external_id="taken")
    items = validated(integration, [submission(external_id="fresh"), submission(external_id="taken")])
    with pytest.raises(CaseConflict):
        case_ingest_batch(actor=integration, items=items)
    assert list(Case.objects.values_list("external_id", flat=True)) == ["taken"]


def test_screened_batch_accepts_or_rejects_each_item(integration: Any, make_user: Any) -> None:
    make_system_with_point("triage", "intake")
    existing = ingest(integration, external_id="old")
    validator = CaseSubmissionValidator(actor=integration)
    raws = [
        submission(external_id="n-1"),
        submission(external_id="n-2", prediction={"label": "maybe"}),
        submission(external_id="old"),
        submission(external_id="n-1"),
        submission(system="triage", point="intake", external_id="t-1"),
        submission(external_id="n-3", confidence=0.2),
    ]
    validator.prime(raws)
    items = []
    for raw in raws:
        data, errors = validator.validate(raw)
        items.append(BatchItem(external_id=raw["external_id"], data=data, error=errors))
    seen: list[list[BatchItem]] = []
    results = case_ingest_screened(actor=integration, items=items, on_created=lambda done: seen.append(list(done)))
    assert len(seen) == 1
    accepted = [r.external_id for r in results if r.case is not None]
    assert accepted == ["n-1", "n-3"]
    assert results[1].error == {"label": [mock.ANY]}
    assert results[2].error["code"] == "duplicate" and results[2].error["id"] == existing.pk
    assert results[3].error["code"] == "duplicate" and results[3].error["id"] == results[0].case.pk
    assert results[4].error["code"] == "system_not_linked"
    assert Case.objects.count() == 3
    assert Case.history.count() == 3


def test_idempotency_purge_keeps_keys_for_at_least_a_day(integration: Any) -> None:
    now = timezone.now()
    IdempotencyKey.objects.create(integration=integration, key="old", fingerprint="f", status_code=201,
                                  response_body={}, created_at=now - dt.timedelta(days=3))
    IdempotencyKey.objects.create(integration=integration, key="new", fingerprint="f", status_code=201,
                                  response_body={}, created_at=now - dt.timedelta(hours=23))
    assert idempotency_purge(older_than=dt.timedelta(hours=1)) == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]
