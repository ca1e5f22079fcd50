"""Services of the compliance workspace: classification, obligations, evidence, FRIA, dossier."""

from __future__ import annotations

import hashlib
import io
from datetime import date
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from pypdf import PdfReader

from audit.canonical import canonical_json, sha256_hex
from audit.models import AuditEvent
from compliance.models import FundamentalRightsAssessment, Obligation, ObligationEvidence
from compliance.selectors.fria import fria_required
from compliance.selectors.obligations import obligation_get, obligations_progress
from compliance.services.classification import system_classify
from compliance.services.dossier import dossier_generate
from compliance.services.fria import fria_save
from compliance.services.obligations import NewEvidence, obligation_update, obligations_sync
from reviews.models import AISystem
from tests.audit.evidence_helpers import audit_key_fixture  # noqa: F401  (the "audit_key" fixture)
from tests.compliance.helpers import CREDIT_ANSWERS, classified, make_point, make_system

pytestmark = pytest.mark.django_db

FRIA_CONTENTS = {
    "processes": "Consumer loan applications up to 50 000 EUR.",
    "period_and_frequency": "Continuously, about 400 applications a day.",
    "affected_persons": "Applicants, including young and low-income applicants.",
    "risks_of_harm": "Unjustified refusal of credit; indirect discrimination by gender or age.",
    "human_oversight": "Every refusal and every low-confidence approval is reviewed by a credit officer.",
    "mitigation": "Appeals within 30 days; quarterly bias audits; complaints to the ombudsman.",
}


def actions(system: AISystem | None = None) -> list[str]:
    rows = AuditEvent.objects.order_by("id")
    if system is not None:
        rows = rows.filter(system_id=system.pk)
    return list(rows.values_list("action", flat=True))


def refs(system: AISystem) -> set[str]:
    return set(Obligation.objects.filter(system=system, applicable=True).values_list("requirement__ref", flat=True))


# --- Classification -------------------------------------------------------------------------------------


def test_classification_is_stored_audited_and_kept_in_history(make_user: Any) -> None:
    officer = make_user("compliance_officer")
    system = make_system(declared_tier="limited")
    system, _, sync = system_classify(actor=officer, system=system, answers=CREDIT_ANSWERS, reason="review")
    system.refresh_from_db()
    assert (system.classified_tier, system.annex_iii_area, system.risk_tier) == ("high", "5b", "high")
    assert system.declared_tier == "limited"  # kept; the classified tier wins
    assert system.classified_at is not None
    assert system.classification_rationale["outcome"] == "high"
    assert system.classification_rationale["catalog_version"] == "2026.1"
    assert system.classification_rationale["classified_by"] == officer.username
    [event] = AuditEvent.objects.filter(action="system.classified")
    assert event.actor_name == officer.username and event.system_id == system.pk
    assert event.reason == "review"
    assert '"classified_tier":"high"' in event.payload and '"outcome":"high"' in event.payload
    history = list(system.history.order_by("history_date"))
    assert history[-1].classified_tier == "high" and history[-1].history_user == officer
    assert history[0].declared_tier == "limited" and history[0].classified_tier == ""
    assert sync.created and "AIA-26.2" in sync.created


def test_prohibited_practice_blocks_the_system_and_its_cases_are_refused(api_client_for: Any) -> None:
    system = make_system()
    make_point(system)
    integration = api_client_for("integration", systems=[system.slug])
    system, result, _ = system_classify(actor=None, system=system, answers={"prohibited_practices": ["c"]})
    assert result.outcome == "prohibited"
    system.refresh_from_db()
    assert system.status == "blocked"
    trail = actions(system)
    assert trail.index("system.blocked") == trail.index("system.classified") + 1
    assert "AIA-5.1.c" in refs(system)
    response = integration.post("/api/v1/cases/", {
        "system": system.slug, "intervention_point": "loan-review", "external_id": "x-1", "input": {"amount": 1},
        "prediction": {"label": "approve", "confidence": 0.9, "model_version": "v1"},
    }, format="json")
    assert response.status_code == 409, response.content
    assert response.json()["code"] == "system_prohibited"


def test_reclassifying_a_blocked_system_halts_it_until_resumed() -> None:
    system = classified(make_system(), {"prohibited_practices": ["a"]})
    assert system.status == "blocked"
    system = classified(system, CREDIT_ANSWERS)
    system.refresh_from_db()
    assert system.status == "halted"
    assert AuditEvent.objects.filter(action="system.halted", system_id=system.pk).exists()


def test_remote_biometric_classification_respects_the_four_eyes_rule() -> None:
    system = make_system("face-match", labels=["match", "no_match"], positive_label="match")
    make_point(system, reviewers_required=1, high_stakes=[])
    with pytest.raises(ValidationError) as info:
        system_classify(actor=None, system=system, answers={"annex_iii": ["1a"]})
    assert "annex_iii" in info.value.message_dict
    assert not AuditEvent.objects.filter(action="system.classified").exists()


# --- Obligations from tier × role ------------------------------------------------------------------------


def test_deployer_of_credit_scoring_gets_deployer_duties_and_the_fria() -> None:
    system = classified(make_system(role="deployer"))
    got = refs(system)
    assert {"AIA-4", "AIA-14.4.e", "AIA-26.2", "AIA-26.5", "AIA-26.11", "AIA-27.1", "AIA-73.2", "AIA-86.1",
            "NIST-MANAGE-2.4", "ISO42001-A.6.2.8"} <= got
    assert not {"AIA-9.1", "AIA-11.1", "AIA-12.1", "AIA-43.2", "AIA-49.1", "AIA-14.5", "AIA-12.3"} & got
    assert fria_required(system)
    fria = Obligation.objects.get(system=system, requirement__ref="AIA-27.1")
    assert fria.due_date == date(2027, 12, 2)  # the amended date set is the catalog's basis
    assert fria.status == "open"


def test_provider_gets_provider_duties_and_no_deployer_ones() -> None:
    system = classified(make_system("hiring", role="provider"), {"annex_iii": ["4a"]})
    got = refs(system)
    assert {"AIA-9.1", "AIA-10.2.f", "AIA-11.1", "AIA-12.1", "AIA-13.3.d", "AIA-15.3", "AIA-17.1", "AIA-19.1",
            "AIA-43.2", "AIA-49.1", "AIA-72.1", "AIA-14.4.a"} <= got
    assert not {"AIA-26.2", "AIA-27.1", "AIA-86.1"} & got
    assert not fria_required(system)


def test_public_body_needs_a_fria_and_registers_its_use() -> None:
    system = classified(make_system("benefits", role="both", is_public_body=True), {"annex_iii": ["5a"]})
    assert {"AIA-27.1", "AIA-26.8", "AIA-49.3", "AIA-9.1", "AIA-26.2"} <= refs(system)


def test_remote_biometric_adds_the_two_person_rule_and_log_fields() -> None:
    system = make_system("face-match", role="both", labels=["match", "no_match"], positive_label="match")
    system = classified(system, {"annex_iii": ["1a"]})
    assert {"AIA-14.5", "AIA-12.3", "AIA-43.1"} <= refs(system)


def test_limited_and_minimal_tiers() -> None:
    chatbot = classified(make_system("chatbot", role="provider"), {"art50": ["50.1"]})
    assert refs(chatbot) == {"AIA-4", "AIA-50.1", "AIA-50.5"}
    spam = classified(make_system("spam-filter"), {})
    assert refs(spam) == {"AIA-4"}
    self_assessed = classified(make_system("cv-parser", role="provider"), {"annex_iii": ["4a"],
                                                                           "exception_6_3": ["a"]})
    assert refs(self_assessed) == {"AIA-4", "AIA-6.4", "AIA-49.2"}
    out = classified(make_system("lab-model"), {"scope_exclusions": ["research"]})
    assert refs(out) == set()


def test_high_risk_with_art50_stacks_both_sets() -> None:
    system = classified(make_system("interview-bot", role="both"), {"annex_iii": ["4a"], "art50": ["50.1"]})
    assert {"AIA-9.1", "AIA-26.2", "AIA-50.1", "AIA-50.5"} <= refs(system)


def test_sync_generates_once_with_an_event_per_obligation() -> None:
    system = classified(make_system())
    count = Obligation.objects.filter(system=system).count()
    events = AuditEvent.objects.filter(action="obligation.updated", system_id=system.pk).count()
    assert events == count
    again = obligations_sync(actor=None, system=system)
    assert not again.changed
    assert Obligation.objects.filter(system=system).count() == count
    assert AuditEvent.objects.filter(action="obligation.updated", system_id=system.pk).count() == events
    one = Obligation.objects.filter(system=system).first()
    assert one.history.count() == 1


def test_reclassification_retires_and_later_reopens_obligations() -> None:
    system = classified(make_system())
    obligation = Obligation.objects.get(system=system, requirement__ref="AIA-26.2")
    obligation_update(actor=None, obligation=obligation, status="in_progress")
    _, _, sync = system_classify(actor=None, system=system, answers={"art50": ["50.4"]})
    assert "AIA-26.2" in sync.retired
    obligation.refresh_from_db()
    assert (obligation.applicable, obligation.status) == (False, "not_applicable")
    assert refs(system) == {"AIA-4", "AIA-50.4", "AIA-50.5"}
    retired = AuditEvent.objects.filter(action="obligation.updated", object_id=str(obligation.pk)).order_by("id")
    assert '"change":"retired"' in retired.last().payload
    _, _, sync = system_classify(actor=None, system=system, answers=CREDIT_ANSWERS)
    assert "AIA-26.2" in sync.reopened
    obligation.refresh_from_db()
    assert (obligation.applicable, obligation.status) == (True, "open")


# --- Working on an obligation ------------------------------------------------------------------------------


def test_update_status_owner_due_is_one_audited_event(make_user: Any) -> None:
    officer = make_user("compliance_officer", "officer1")
    system = classified(make_system())
    obligation = obligation_get(system=system, ref="AIA-26.2")
    obligation_update(actor=officer, obligation=obligation, status="in_progress", owner="officer1",
                      due_date=date(2027, 6, 30), note="Training plan drafted.", reason="kick-off")
    obligation.refresh_from_db()
    assert (obligation.status, obligation.owner, obligation.due_date) == ("in_progress", officer, date(2027, 6, 30))
    event = AuditEvent.objects.filter(action="obligation.updated", object_id=str(obligation.pk)).order_by("id").last()
    assert event.reason == "kick-off" and event.actor_name == "officer1"
    assert '"status":"in_progress"' in event.payload and '"owner":"officer1"' in event.payload


def test_met_needs_evidence_and_not_applicable_needs_a_reason() -> None:
    system = classified(make_system())
    obligation = obligation_get(system=system, ref="AIA-26.4")
    with pytest.raises(ValidationError) as info:
        obligation_update(actor=None, obligation=obligation, status="met")
    assert "status" in info.value.message_dict
    with pytest.raises(ValidationError) as info:
        obligation_update(actor=None, obligation=obligation, status="not_applicable")
    assert "note" in info.value.message_dict
    obligation_update(actor=None, obligation=obligation, status="met",
                      add_evidence=[NewEvidence(kind="link", url="https://intranet.example/data-policy")])
    obligation.refresh_from_db()
    assert obligation.status == "met"
    assert obligations_progress(system=system).met == 1


def test_owner_must_answer_for_compliance(make_user: Any) -> None:
    make_user("reviewer", "rev1")
    system = classified(make_system())
    obligation = obligation_get(system=system, ref="AIA-4")
    with pytest.raises(ValidationError) as info:
        obligation_update(actor=None, obligation=obligation, owner="rev1")
    assert "owner" in info.value.message_dict
    with pytest.raises(ValidationError):
        obligation_update(actor=None, obligation=obligation, owner="nobody-by-that-name")


def test_portal_evidence_of_the_audit_chain_is_a_hashed_snapshot() -> None:
    system = classified(make_system())
    obligation = obligation_get(system=system, ref="AIA-26.6")
    obligation_update(actor=None, obligation=obligation, add_evidence=[NewEvidence(kind="portal")])
    evidence = ObligationEvidence.objects.get(obligation=obligation)
    assert evidence.portal_kind == "audit_chain"
    assert evidence.snapshot["data"]["ok"] is True
    assert evidence.snapshot["data"]["retention_days"] >= 183
    assert evidence.sha256 == sha256_hex(canonical_json(evidence.snapshot))


def test_portal_evidence_of_intervention_points_and_competence(make_user: Any) -> None:
    system = classified(make_system())
    make_point(system, blind_review_rate=0.1)
    reviewer = make_user("reviewer", "rev1", systems=[system.slug])
    from reviews.models import TrainingRecord

    TrainingRecord.objects.create(reviewer=reviewer.reviewer_profile, title="AI literacy", kind="ai_literacy",
                                  completed_at=date(2026, 1, 10))
    obligation_update(actor=None, obligation=obligation_get(system=system, ref="AIA-14.4.b"),
                      add_evidence=[NewEvidence(kind="portal")])
    obligation_update(actor=None, obligation=obligation_get(system=system, ref="AIA-26.2"),
                      add_evidence=[NewEvidence(kind="portal")])
    points = ObligationEvidence.objects.get(portal_kind="intervention_points").snapshot
    assert points["data"]["points"][0]["slug"] == "loan-review"
    assert "blind review) on" in points["summary"]
    competence = ObligationEvidence.objects.get(portal_kind="reviewer_competence").snapshot
    assert competence["data"]["reviewers"][0]["username"] == "rev1"
    assert competence["data"]["reviewers"][0]["valid_training"] is True


def test_portal_evidence_refused_where_the_portal_has_none() -> None:
    system = classified(make_system())
    obligation = obligation_get(system=system, ref="AIA-26.7")
    with pytest.raises(ValidationError) as info:
        obligation_update(actor=None, obligation=obligation, add_evidence=[NewEvidence(kind="portal")])
    assert "capture_portal_evidence" in info.value.message_dict


def test_file_evidence_is_stored_with_its_hash(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = tmp_path
    system = classified(make_system())
    obligation = obligation_get(system=system, ref="AIA-26.7")
    content = b"Works council informed on 2026-10-01."
    upload = SimpleUploadedFile("works-council.txt", content, content_type="text/plain")
    obligation_update(actor=None, obligation=obligation, add_evidence=[NewEvidence(kind="file", file=upload)])
    evidence = ObligationEvidence.objects.get(obligation=obligation)
    assert evidence.sha256 == hashlib.sha256(content).hexdigest()
    assert evidence.file.read() == content
    event = AuditEvent.objects.filter(action="obligation.updated", object_id=str(obligation.pk)).order_by("id").last()
    assert evidence.sha256 in event.payload


# --- FRIA -------------------------------------------------------------------------------------------------


def test_fria_saves_are_versioned_and_audited(make_user: Any) -> None:
    officer = make_user("compliance_officer")
    system = classified(make_system())
    first = fria_save(actor=officer, system=system, contents=FRIA_CONTENTS)
    second = fria_save(actor=officer, system=system, contents={**FRIA_CONTENTS, "processes": "Also car loans."},
                       change_summary="Car loans added", authority_notified_on=date(2026, 11, 1))
    assert (first.version, second.version) == (1, 2)
    first.refresh_from_db()
    assert first.processes == FRIA_CONTENTS["processes"]  # earlier versions stay as they were
    events = list(AuditEvent.objects.filter(action="fria.saved").order_by("id"))
    assert len(events) == 2
    assert '"version":2' in events[1].payload and events[1].reason == "Car loans added"


def test_fria_needs_all_of_a_to_f() -> None:
    system = classified(make_system())
    with pytest.raises(ValidationError) as info:
        fria_save(actor=None, system=system, contents={**FRIA_CONTENTS, "risks_of_harm": "  "})
    assert "risks_of_harm" in info.value.message_dict
    assert FundamentalRightsAssessment.objects.count() == 0


# --- Dossier ----------------------------------------------------------------------------------------------


def test_dossier_generation_records_the_document_hash(make_user: Any) -> None:
    officer = make_user("compliance_officer")
    system = classified(make_system())
    make_point(system)
    fria_save(actor=officer, system=system, contents=FRIA_CONTENTS)
    dossier = dossier_generate(actor=officer, system=system, fmt="pdf")
    assert dossier.content.startswith(b"%PDF")
    event = AuditEvent.objects.filter(action="dossier.generated").order_by("id").last()
    assert event.system_id == system.pk and event.actor_name == officer.username
    assert f'"sha256":"{hashlib.sha256(dossier.content).hexdigest()}"' in event.payload
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(dossier.content)).pages)
    for title in ["General description", "Development process", "Monitoring, functioning and control",
                  "Risk management system", "Post-market monitoring plan", "Human oversight measures",
                  "Obligations status", "Audit trail integrity"]:
        assert title in text, title
    assert "Loan review" in text
    assert "Unjustified refusal of credit" in text


def test_html_dossier_is_the_same_document() -> None:
    system = classified(make_system())
    dossier = dossier_generate(actor=None, system=system, fmt="html")
    html = dossier.content.decode()
    assert "<h2>1. General description</h2>" in html
    assert "High risk (Annex III 5(b))" in html
    with pytest.raises(ValueError):
        dossier_generate(actor=None, system=system, fmt="docx")


def test_dossier_shows_the_kpi_modules_figures_and_bias_audits(make_user: Any,
                                                               django_capture_on_commit_callbacks: Any) -> None:
    from dashboard.selectors import KpiScope, kpis
    from fairness.services import bias_audit_request
    from tests.reviews.factories import ingest

    admin = make_user("admin")
    system = classified(make_system())
    make_point(system)
    for n, confidence in enumerate([0.95, 0.91, 0.97, 0.42]):
        ingest(admin, external_id=f"app-{n}", confidence=confidence, subject={"gender": "fm"[n % 2]})
    with django_capture_on_commit_callbacks(execute=True):
        audit = bias_audit_request(actor=admin, system=system, attribute="gender")
    audit.refresh_from_db()
    assert audit.status == "done"
    dossier = dossier_generate(actor=admin, system=system, fmt="html")
    html = dossier.content.decode()
    figures = dossier.context["kpis"]
    assert figures["cases_total"] == 4 and figures["automation_rate"] == 0.75
    start = dossier.context["kpis"]["from"]
    assert figures == {**kpis(KpiScope(start=figures_start(start), end=dossier.context["generated_at"],
                                        system=system), now=dossier.context["generated_at"]),
                       "period": figures["period"]}
    assert "<td>Automation rate</td><td class=\"num\">75.0 %</td>" in html
    assert "<td>Cases</td><td class=\"num\">4</td>" in html
    assert f"#{audit.pk}" in html and "<td>gender</td>" in html
    assert "KPI figures are not available" not in html


def figures_start(iso: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


@pytest.mark.usefixtures("audit_key")
def test_dossier_states_what_the_external_witness_vouches_for(settings: Any,
                                                             django_capture_on_commit_callbacks: Any) -> None:
    from audit.services import checkpoint_sign
    from tests.audit.factories import write_events

    system = classified(make_system())
    write_events(3)
    with django_capture_on_commit_callbacks(execute=True):  # the witness is written once the checkpoint commits
        checkpoint = checkpoint_sign()
    assert checkpoint is not None
    html = dossier_generate(actor=None, system=system, fmt="html").content.decode()
    assert (f"file witness, compared with the chain: it holds 1 checkpoint, the last at event {checkpoint.seq}, "
            'and the chain <span class="ok">matches every one</span>') in html
    event = AuditEvent.objects.filter(action="dossier.generated").order_by("id").last()
    assert '"chain_witness":"file"' in event.payload and '"chain_witnessed_checkpoints":1' in event.payload

    settings.HITL_AUDIT_WITNESS = "none"
    html = dossier_generate(actor=None, system=system, fmt="html").content.decode()
    assert '<span class="bad">none configured</span>: the tail of the chain is only as safe as the database' in html
