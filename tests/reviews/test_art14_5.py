"""Art. 14(5) enforced, not configured: every identification result of an Annex III 1(a) system
is verified by two different reviewers, whatever its confidence and whatever the point says."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from compliance.dossier import dossier_context
from records.selectors import two_person_evidence
from reviews.models import CaseStatus
from reviews.services.decisions import decision_record
from reviews.services.queue import claim_next
from reviews.services.systems import intervention_point_create, intervention_point_update
from tests.reviews.factories import ingest, make_system_with_point
from tests.reviews.queue_helpers import make_reviewer, make_user

pytestmark = pytest.mark.django_db

BIOMETRIC = {"annex_iii_area": "1a", "non_match_label": "no_match"}
LABELS = ("match", "no_match")


def _system():
    return make_system_with_point("face-id", "verify", labels=LABELS, system_fields=BIOMETRIC,
                                  confidence_below=0.5, reviewers_required=2)


def test_a_confident_match_goes_to_two_reviewers_and_is_decided_only_by_two() -> None:
    system, _ = _system()
    integration = make_user("integration", systems=[system.slug])
    case = ingest(integration, system="face-id", point="verify", external_id="probe-1", label="match",
                  confidence=0.97)
    assert case.status == CaseStatus.QUEUED
    assert "biometric_identification" in case.routing_reasons
    assert case.reviewers_required == 2
    first, second = make_reviewer(systems=[system]), make_reviewer(systems=[system])
    assert claim_next(reviewer=first).pk == case.pk
    decision_record(case=case, reviewer=first, outcome="approve", label=None, rationale="")
    case.refresh_from_db()
    assert case.status == CaseStatus.QUEUED  # one verification is not enough
    assert claim_next(reviewer=first) is None  # never the same person twice
    assert claim_next(reviewer=second).pk == case.pk
    decision_record(case=case, reviewer=second, outcome="approve", label=None, rationale="")
    case.refresh_from_db()
    assert case.status == CaseStatus.DECIDED and case.final_label == "match"
    evidence = two_person_evidence(system=system)
    assert (evidence.identifications, evidence.decided, evidence.verified_by_two, evidence.held) == (1, 1, 1, True)


def test_the_non_match_label_is_not_an_identification() -> None:
    system, _ = _system()
    integration = make_user("integration", systems=[system.slug])
    case = ingest(integration, system="face-id", point="verify", external_id="probe-2", label="no_match",
                  confidence=0.97)
    assert case.status == CaseStatus.AUTO_ACCEPTED
    assert "biometric_identification" not in case.routing_reasons


def test_without_a_declared_non_match_label_every_result_is_verified() -> None:
    system, _ = make_system_with_point("face-id-2", "verify", labels=LABELS, system_fields={"annex_iii_area": "1a"},
                                       confidence_below=0.5)
    integration = make_user("integration", systems=[system.slug])
    case = ingest(integration, system="face-id-2", point="verify", external_id="p", label="no_match",
                  confidence=0.99)
    assert "biometric_identification" in case.routing_reasons and case.reviewers_required == 2


@pytest.mark.parametrize(("rules", "field"), [
    ({"reviewers_required": 1}, "reviewers_required"),
    ({"on_sla_breach": "accept_ai", "sla_seconds": 60}, "on_sla_breach"),
])
def test_a_configuration_that_would_bypass_it_is_refused_naming_the_field(rules, field) -> None:
    system, point = _system()
    with pytest.raises(ValidationError) as created:
        intervention_point_create(actor=None, system=system, slug="other", name="Other", stage="validation", **rules)
    assert field in created.value.message_dict
    with pytest.raises(ValidationError) as updated:
        intervention_point_update(actor=None, point=point, changes=rules)
    assert field in updated.value.message_dict


def test_the_api_refuses_a_one_reviewer_point_with_a_400_naming_the_field(api_client_for) -> None:
    _system()
    response = api_client_for("compliance_officer").post(
        "/api/v1/systems/face-id/intervention-points/",
        {"slug": "quick", "name": "Quick", "stage": "validation", "reviewers_required": 1}, format="json")
    assert response.status_code == 400
    assert "reviewers_required" in response.json()


def test_a_non_match_label_outside_the_labels_is_refused(api_client_for) -> None:
    _system()
    response = api_client_for("compliance_officer").patch("/api/v1/systems/face-id/",
                                                          {"non_match_label": "nobody"}, format="json")
    assert response.status_code == 400
    assert "non_match_label" in response.json()


def test_the_dossier_states_the_rule_and_its_evidence() -> None:
    system, _ = _system()
    integration = make_user("integration", systems=[system.slug])
    ingest(integration, system="face-id", point="verify", external_id="probe-3", label="match", confidence=0.99)
    context = dossier_context(system, generated_by="test")
    assert context["two_person"].identifications == 1 and context["two_person"].open == 1
    from compliance.dossier import render_html

    html = render_html(context).decode()
    assert "Art. 14(5): identification results verified by two people" in html
    assert "Identification results routed" in html
