"""Bias audits end to end through the services and the (eager) tasks: planning, chunks, fan-in, incidents.

Celery runs inline in unit tests; the real worker is in ``test_celery_worker.py``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.models import AuditEvent
from fairness import tasks
from fairness.models import AuditStatus, BiasAudit, BiasAuditChunk
from fairness.selectors import audit_get, audit_representation, chunk_counts
from fairness.services import (
    bias_audit_fail,
    bias_audit_request,
    bias_audit_run_chunk,
    bias_audit_start,
    chunk_key,
    plan_slices,
    schedule_nightly_audits,
)
from incidents.models import Incident
from reviews.models import AISystem
from reviews.services.systems import system_halt
from tests.fairness.factories import add_cases, make_audited_system

pytestmark = pytest.mark.django_db

# A clear disparity: group f is approved 30 % of the time, m 60 % (ratio 0.5); reviewers fix part of it.
DISPARITY = [
    (30, "f", "approve", "approve", "approve"),
    (70, "f", "reject", "reject", "reject"),
    (60, "m", "approve", "approve", "approve"),
    (40, "m", "reject", "reject", "reject"),
]
# Both groups approved half of the time: nothing to flag.
BALANCED = [
    (50, "f", "approve", "approve", "approve"),
    (50, "f", "reject", "reject", "reject"),
    (50, "m", "approve", "approve", "approve"),
    (50, "m", "reject", "reject", "reject"),
]


def events(action: str, audit: BiasAudit | None = None) -> list[AuditEvent]:
    queryset = AuditEvent.objects.filter(action=action)
    if audit is not None:
        queryset = queryset.filter(object_type="biasaudit", object_id=str(audit.pk))
    return list(queryset)


def run(audit: BiasAudit, capture) -> BiasAudit:
    """Let the request's transaction "commit": its on-commit task runs (eagerly), and with it every chunk."""
    with capture(execute=True):
        pass
    return BiasAudit.objects.get(pk=audit.pk)


@pytest.fixture
def audited(db):
    return make_audited_system()


def request_audit(system: AISystem, capture, *, attribute: str = "gender", **kwargs) -> BiasAudit:
    with capture(execute=True) as callbacks:
        audit = bias_audit_request(actor=None, system=system, attribute=attribute, **kwargs)
    assert len(callbacks) >= 1
    return BiasAudit.objects.get(pk=audit.pk)


def test_request_validates_attribute_positive_label_and_period(audited, make_user):
    system, _ = audited
    officer = make_user("compliance_officer")
    with pytest.raises(ValidationError) as excinfo:
        bias_audit_request(actor=officer, system=system, attribute="postcode")
    assert "attribute" in excinfo.value.message_dict
    assert "gender, age_band" in excinfo.value.message_dict["attribute"][0]
    now = timezone.now()
    with pytest.raises(ValidationError) as excinfo:
        bias_audit_request(actor=officer, system=system, attribute="gender", period_from=now, period_to=now)
    assert "to" in excinfo.value.message_dict
    no_positive, _ = make_audited_system("no-positive", positive_label="")
    with pytest.raises(ValidationError) as excinfo:
        bias_audit_request(actor=officer, system=no_positive, attribute="gender")
    assert "system" in excinfo.value.message_dict
    assert not BiasAudit.objects.exists()
    assert not events("bias_audit.requested")


def test_request_is_audited_and_enqueued_only_on_commit(audited, make_user, django_capture_on_commit_callbacks):
    system, point = audited
    add_cases(system, point, BALANCED)
    officer = make_user("compliance_officer")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        audit = bias_audit_request(actor=officer, system=system, attribute="gender")
    # Nothing ran inside the transaction: the task waits for the commit.
    assert len(callbacks) == 1
    assert BiasAudit.objects.get(pk=audit.pk).status == AuditStatus.PENDING
    (event,) = events("bias_audit.requested", audit)
    assert event.actor_name == officer.username
    data = json.loads(event.payload)["data"]
    assert data["attribute"] == "gender" and data["system"] == "credit-scoring"
    # Canonical audit JSON carries no floats: numbers other than integers are stored as text.
    assert data["thresholds"]["disparate_impact_min"] == "0.8"
    assert audit.requested_by == officer
    assert audit.thresholds == {"disparate_impact_min": 0.8, "demographic_parity_max": 0.1, "equalized_odds_max": 0.1}
    assert audit.min_group_size == 30
    assert audit.period_to - audit.period_from == dt.timedelta(days=30)
    with django_capture_on_commit_callbacks(execute=True):
        callbacks[0]()  # the commit: the eager worker plans the audit and runs every chunk
    audit.refresh_from_db()
    assert audit.status == AuditStatus.DONE
    assert audit.history.filter(status=AuditStatus.DONE).exists()
    assert audit.history.earliest().history_user == officer


def test_flagged_audit_files_a_bias_incident_and_records_events(audited, django_capture_on_commit_callbacks):
    system, point = audited
    add_cases(system, point, DISPARITY)
    audit = request_audit(system, django_capture_on_commit_callbacks)
    assert audit.status == AuditStatus.DONE and audit.flagged
    incident = audit.incident
    assert incident is not None
    assert (incident.kind, incident.source, incident.source_ref) == ("bias", "bias_audit", str(audit.pk))
    assert incident.system == system and incident.report_due_at is None
    assert "disparate impact ratio of the AI labels: 0.500, below the threshold 0.800" in incident.description
    assert "'f' 30.0 %" in incident.description and "'m' 60.0 %" in incident.description
    (completed,) = events("bias_audit.completed", audit)
    assert completed.actor_type == "system"
    assert json.loads(completed.payload)["data"]["flagged"] is True
    (flagged,) = events("bias_audit.flagged", audit)
    assert json.loads(flagged.payload)["data"]["incident"] == incident.pk
    assert AuditEvent.objects.filter(action="incident.created", object_id=str(incident.pk)).count() == 1
    data = audit_representation(audit_get(audit.pk))
    assert data["flagged"] is True and data["incident"] == incident.pk
    assert data["metrics"]["ai"]["disparate_impact_ratio"] == pytest.approx(0.5)
    assert data["metrics"]["final"]["four_fifths_rule"] == "fail"


def test_balanced_audit_is_not_flagged(audited, django_capture_on_commit_callbacks):
    system, point = audited
    add_cases(system, point, BALANCED)
    audit = request_audit(system, django_capture_on_commit_callbacks)
    assert audit.status == AuditStatus.DONE
    assert audit.flagged is False and audit.incident is None
    assert not events("bias_audit.flagged") and not Incident.objects.exists()
    assert audit.results["metrics"]["ai"]["disparate_impact_ratio"] == 1.0
    assert len(events("bias_audit.completed", audit)) == 1


def test_per_system_thresholds_and_minimum_group_size(django_capture_on_commit_callbacks):
    system, point = make_audited_system(bias_thresholds={
        "disparate_impact_min": 0.4, "demographic_parity_max": 0.35, "equalized_odds_max": 0.5,
        "min_group_size": 150,
    })
    add_cases(system, point, DISPARITY)
    add_cases(system, point, [(100, "m", "approve", "approve", None)])
    audit = request_audit(system, django_capture_on_commit_callbacks)
    assert audit.thresholds["disparate_impact_min"] == 0.4 and audit.min_group_size == 150
    # f (100 cases) is now too small to compare: nothing is compared, nothing flagged.
    groups = {g["value"]: g for g in audit.results["groups"]}
    assert groups["f"]["insufficient_n"] and groups["m"]["included"]
    assert audit.results["metrics"]["ai"]["groups_compared"] == 1
    assert audit.flagged is False


def test_only_the_systems_non_gold_cases_in_the_period_count(audited, django_capture_on_commit_callbacks):
    system, point = audited
    other, other_point = make_audited_system("other-system")
    add_cases(system, point, BALANCED)
    now = timezone.now()
    add_cases(system, point, [(40, "f", "reject", "reject", None)], received_at=now - dt.timedelta(days=45))
    add_cases(system, point, [(40, "f", "reject", "reject", None)], is_gold=True)
    add_cases(other, other_point, [(40, "f", "reject", "reject", None)])
    audit = request_audit(system, django_capture_on_commit_callbacks)
    assert audit.cases_counted == 200
    assert {g["value"]: g["n"] for g in audit.results["groups"]} == {"f": 100, "m": 100}


def test_an_explicit_period_and_an_empty_one(audited, django_capture_on_commit_callbacks):
    system, point = audited
    now = timezone.now()
    add_cases(system, point, BALANCED, received_at=now - dt.timedelta(days=100))
    audit = request_audit(system, django_capture_on_commit_callbacks, period_from=now - dt.timedelta(days=101),
                          period_to=now - dt.timedelta(days=99))
    assert audit.cases_counted == 200
    empty = request_audit(system, django_capture_on_commit_callbacks)
    assert empty.status == AuditStatus.DONE and empty.chunks_total in (30, 31) and empty.cases_counted == 0
    assert empty.results["groups"] == [] and empty.flagged is False
    assert empty.results["metrics"]["final"]["disparate_impact_ratio"] is None


def spread(system, point, spec, *, days: list[int]) -> None:
    """The same cases on several days back (each tuple's count per day)."""
    for day in days:
        add_cases(system, point, spec, received_at=timezone.now() - dt.timedelta(days=day, hours=1))


def test_many_chunks_give_the_same_results_as_one(audited, settings, django_capture_on_commit_callbacks):
    system, point = audited
    spread(system, point, DISPARITY, days=[1, 5, 12, 29])
    spread(system, point, [(10, None, "approve", "reject", None), (3, "x", "approve", "approve", None)],
           days=[2, 3, 20])
    settings.HITL_BIAS_AUDIT_CHUNK_SECONDS = 40 * 86_400
    whole = request_audit(system, django_capture_on_commit_callbacks)
    settings.HITL_BIAS_AUDIT_CHUNK_SECONDS = 86_400
    chunked = request_audit(system, django_capture_on_commit_callbacks)
    # 30 days from the middle of a day: 31 slices (30 only when requested right at midnight).
    assert whole.chunks_total in (1, 2) and chunked.chunks_total in (30, 31)
    assert chunked.chunks.count() == chunked.chunks_total
    assert sum(c.cases for c in chunked.chunks.all()) == 839
    assert chunked.results == whole.results
    assert audit_representation(audit_get(chunked.pk))["progress"] == {
        "chunks_done": chunked.chunks_total, "chunks_total": chunked.chunks_total, "fraction": 1.0}


def test_a_long_period_gets_wider_chunks(audited, django_capture_on_commit_callbacks):
    system, _ = audited
    now = timezone.now()
    audit = request_audit(system, django_capture_on_commit_callbacks, period_from=now - dt.timedelta(days=3000),
                          period_to=now)
    assert audit.chunk_seconds == 8 * 86_400 and audit.chunks_total <= 400


def test_a_retried_chunk_changes_nothing(audited, django_capture_on_commit_callbacks):
    system, point = audited
    spread(system, point, DISPARITY, days=[1, 2, 3])
    with django_capture_on_commit_callbacks(execute=False):
        audit = bias_audit_request(actor=None, system=system, attribute="gender")
    with django_capture_on_commit_callbacks(execute=False) as enqueued:
        indexes = bias_audit_start(audit_id=audit.pk)
    assert len(enqueued) == 1 and indexes == list(range(len(indexes))) and len(indexes) in (30, 31)
    audit.refresh_from_db()
    yesterday = timezone.now() - dt.timedelta(days=1, hours=1)
    slices = [tuple(dt.datetime.fromisoformat(t) for t in pair) for pair in audit.plan]
    busy = next(i for i, (low, high) in enumerate(slices) if low <= yesterday < high)

    # Run a chunk twice while the audit runs: one row, the same counts, the first completion time.
    chunk = bias_audit_run_chunk(audit_id=audit.pk, index=busy)
    again = bias_audit_run_chunk(audit_id=audit.pk, index=busy)
    assert chunk.cases == 200
    assert BiasAuditChunk.objects.filter(audit=audit).count() == 1
    assert (again.pk, again.counts, again.cases, again.done_at) == (chunk.pk, chunk.counts, chunk.cases, chunk.done_at)
    assert chunk.key == chunk_key(chunk.received_from, chunk.received_to)
    progress = audit_representation(audit_get(audit.pk))["progress"]
    assert progress["chunks_done"] == 1 and progress["chunks_total"] == len(indexes)

    for index in indexes:
        if index != busy:
            bias_audit_run_chunk(audit_id=audit.pk, index=index)
    audit.refresh_from_db()
    assert audit.status == AuditStatus.DONE and audit.flagged and audit.cases_counted == 600
    snapshot = (audit.results, list(audit.chunks.values_list("key", "counts", "cases", "done_at")),
                audit.incident_id, audit.finished_at)
    counts = {action: len(events(action)) for action in ("bias_audit.completed", "bias_audit.flagged",
                                                          "incident.created")}
    assert counts == {"bias_audit.completed": 1, "bias_audit.flagged": 1, "incident.created": 1}

    # Retried after the audit finished (a redelivered message): nothing changes, nothing is filed again.
    for index in indexes:
        assert bias_audit_run_chunk(audit_id=audit.pk, index=index) is None
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.run_bias_audit.delay(audit.pk).get() == 0
        tasks.audit_chunk.delay(audit.pk, busy)
    audit.refresh_from_db()
    assert (audit.results, list(audit.chunks.values_list("key", "counts", "cases", "done_at")),
            audit.incident_id, audit.finished_at) == snapshot
    assert {action: len(events(action)) for action in counts} == counts
    assert Incident.objects.count() == 1


def test_resuming_a_running_audit_enqueues_only_the_chunks_not_done(audited, django_capture_on_commit_callbacks):
    system, point = audited
    spread(system, point, BALANCED, days=[0, 4])
    with django_capture_on_commit_callbacks(execute=False):
        audit = bias_audit_request(actor=None, system=system, attribute="gender")
        indexes = bias_audit_start(audit_id=audit.pk)
    bias_audit_run_chunk(audit_id=audit.pk, index=indexes[-1])
    with django_capture_on_commit_callbacks(execute=False):
        assert bias_audit_start(audit_id=audit.pk) == indexes[:-1]
    # The plan is made once: the audit is still running with the same plan.
    audit.refresh_from_db()
    plan = audit.plan
    assert audit.status == AuditStatus.RUNNING and len(plan) == len(indexes)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.run_bias_audit.delay(audit.pk)
    audit.refresh_from_db()
    assert audit.status == AuditStatus.DONE and audit.cases_counted == 400 and audit.plan == plan


def test_chunk_counts_are_one_grouped_query(audited, django_assert_num_queries):
    system, point = audited
    add_cases(system, point, BALANCED)
    add_cases(system, point, [(3, None, "approve", "approve", None)])
    add_cases(system, point, [(2, 7, "approve", "approve", None)], attribute="gender")
    audit = BiasAudit.objects.create(system=system, attribute="gender", positive_label="approve",
                                     period_from=timezone.now() - dt.timedelta(days=30), period_to=timezone.now())
    with django_assert_num_queries(1):
        rows = chunk_counts(audit, received_from=audit.period_from, received_to=audit.period_to)
    assert sum(row[-1] for row in rows) == 205
    assert ["7", "approve", "approve", None, True, "decided", 2] in rows  # a number becomes its text
    assert [None, "approve", "approve", None, True, "decided", 3] in rows


def test_a_chunk_that_fails_marks_the_audit_failed(audited, django_capture_on_commit_callbacks):
    system, point = audited
    add_cases(system, point, BALANCED)
    with django_capture_on_commit_callbacks(execute=False):
        audit = bias_audit_request(actor=None, system=system, attribute="gender")
        bias_audit_start(audit_id=audit.pk)
    with pytest.raises(ValueError, match="has no chunk 999"):
        tasks.audit_chunk.delay(audit.pk, 999)
    audit.refresh_from_db()
    assert audit.status == AuditStatus.FAILED and "has no chunk 999" in audit.error
    (event,) = events("bias_audit.failed", audit)
    assert json.loads(event.payload)["after"] == {"status": "failed"}
    # A failed audit stays failed: late chunks and a second failure change nothing.
    assert bias_audit_run_chunk(audit_id=audit.pk, index=0) is None
    assert bias_audit_fail(audit_id=audit.pk, error="again") is None
    assert len(events("bias_audit.failed", audit)) == 1 and not events("bias_audit.completed", audit)
    data = audit_representation(audit_get(audit.pk))
    assert data["status"] == "failed" and data["error"].startswith("ValueError")


def test_nightly_schedule_audits_every_active_system_and_attribute(django_capture_on_commit_callbacks):
    credit, point = make_audited_system("credit-scoring", attributes=["gender", "age_band"])
    make_audited_system("no-label", positive_label="")
    halted, _ = make_audited_system("halted-system", attributes=["gender"])
    system_halt(actor=None, system=halted, reason="Stop for investigation.")
    add_cases(credit, point, BALANCED)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.schedule_nightly_audits.delay()
    audits = list(BiasAudit.objects.order_by("attribute"))
    assert [(a.system.slug, a.attribute, a.status) for a in audits] == [
        ("credit-scoring", "age_band", "done"), ("credit-scoring", "gender", "done")]
    assert all(a.requested_by is None and a.period_to - a.period_from == dt.timedelta(days=30) for a in audits)
    requested = events("bias_audit.requested")
    assert len(requested) == 2 and all(e.actor_type == "system" for e in requested)
    # An audit still open for the pair is not stacked up by the next night.
    with django_capture_on_commit_callbacks(execute=False):
        open_audit = bias_audit_request(actor=None, system=credit, attribute="gender")
    assert [a.attribute for a in schedule_nightly_audits()] == ["age_band"]
    assert BiasAudit.objects.get(pk=open_audit.pk).status == AuditStatus.PENDING


def test_nightly_schedule_resumes_stale_open_audits(audited, django_capture_on_commit_callbacks):
    system, point = audited
    add_cases(system, point, BALANCED)
    with django_capture_on_commit_callbacks(execute=False):
        audit = bias_audit_request(actor=None, system=system, attribute="gender")
    audit.requested_at = timezone.now() - dt.timedelta(hours=2)
    audit.save(update_fields=["requested_at"])
    with django_capture_on_commit_callbacks(execute=True):
        schedule_nightly_audits()
    assert BiasAudit.objects.get(pk=audit.pk).status == AuditStatus.DONE


def test_plan_slices_cut_the_period_at_utc_boundaries_without_gaps():
    utc = dt.UTC
    start = dt.datetime(2026, 11, 1, 9, 30, tzinfo=utc)
    day = 86_400
    assert plan_slices(start, start + dt.timedelta(hours=1), seconds=day) == [(start, start + dt.timedelta(hours=1))]
    slices = plan_slices(start, dt.datetime(2026, 11, 4, 12, 0, tzinfo=utc), seconds=day)
    assert [(a.day, a.hour, b.day, b.hour) for a, b in slices] == [(1, 9, 2, 0), (2, 0, 3, 0), (3, 0, 4, 0),
                                                                   (4, 0, 4, 12)]
    assert all(a[1] == b[0] for a, b in itertools.pairwise(slices))
    hourly = plan_slices(start, start + dt.timedelta(hours=5), seconds=3600)
    assert len(hourly) == 6 and hourly[1][0] == dt.datetime(2026, 11, 1, 10, tzinfo=utc)
    assert chunk_key(*slices[1]) == "20261102T000000Z-20261103T000000Z"
    odd = dt.datetime(2026, 11, 1, 9, 30, 0, 250, tzinfo=utc)
    assert chunk_key(odd, slices[0][1]) == "20261101T093000.000250Z-20261102T000000Z"
