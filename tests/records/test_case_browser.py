"""The case browser (``/audit/cases/``) and a case's timeline; the console's history pages show diffs."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client
from django.utils import timezone

from reviews.models import Case
from reviews.services.decisions import case_reopen, decision_record
from reviews.services.queue import claim_next
from reviews.services.systems import intervention_point_update, system_update
from tests.incidents.incident_helpers import file_incident, make_case

pytestmark = pytest.mark.django_db

LIST = "/audit/cases/"


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def case_ids(response) -> list[int]:
    assert response.status_code == 200
    return [int(pk) for pk in re.findall(r'<td><a href="/audit/cases/(\d+)/">#', response.content.decode())]


def decided_case(make_user, external_id="app-10023"):
    """A routed case a reviewer overrode; then an officer reopened it. Returns (case, reviewer, officer)."""
    case = make_case(external_id, confidence=0.6)
    reviewer = make_user("reviewer", "rev1", systems=["credit-scoring"])
    officer = make_user("compliance_officer", "officer1")
    claimed = claim_next(reviewer=reviewer)
    assert claimed is not None and claimed.pk == case.pk
    decision_record(reviewer=reviewer, case=claimed, outcome="override", label="reject",
                    rationale="Income is not documented.")
    case_reopen(actor=officer, case=Case.objects.get(pk=case.pk), reason="Applicant appealed (Art. 86).")
    return Case.objects.get(pk=case.pk), reviewer, officer


def test_anonymous_is_sent_to_login(client):
    for url in (LIST, f"{LIST}1/"):
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith("/accounts/login/")


@pytest.mark.parametrize("role", ["reviewer", "integration"])
def test_other_roles_get_403(make_user, role):
    case = make_case("app-1")
    client = client_for(make_user(role))
    assert client.get(LIST).status_code == 403
    assert client.get(f"{LIST}{case.pk}/").status_code == 403


@pytest.mark.parametrize("role", ["compliance_officer", "manager", "admin"])
def test_readers_see_list_and_case(make_user, role):
    case = make_case("app-1")
    client = client_for(make_user(role))
    assert case_ids(client.get(LIST)) == [case.pk]
    assert client.get(f"{LIST}{case.pk}/").status_code == 200
    assert client.get(f"{LIST}999999/").status_code == 404
    assert client.get(f"{LIST}{2**64}/").status_code == 404


def test_filters(make_user):
    decided, _reviewer, officer = decided_case(make_user)
    auto = make_case("app-auto", confidence=0.99)
    other = make_case("tx-1", system="fraud-check", point="tx-review", confidence=0.5)
    old = make_case("app-old", confidence=0.5)
    Case.objects.filter(pk=old.pk).update(received_at=dt.datetime(2025, 1, 15, 12, tzinfo=dt.UTC))
    client = client_for(officer)

    assert case_ids(client.get(LIST, {"q": "app-10023"})) == [decided.pk]
    assert case_ids(client.get(LIST, {"q": "app-1002"})) == []
    assert case_ids(client.get(LIST, {"system": "fraud-check"})) == [other.pk]
    assert case_ids(client.get(LIST, {"status": "auto_accepted"})) == [auto.pk]
    assert case_ids(client.get(LIST, {"resolution": "auto_accepted"})) == [auto.pk]
    assert case_ids(client.get(LIST, {"status": "escalated"})) == [decided.pk]
    # "open" (the dashboard's queue depth): queued, claimed and escalated together.
    assert sorted(case_ids(client.get(LIST, {"status": "open"}))) == sorted([decided.pk, other.pk, old.pk])
    assert sorted(case_ids(client.get(LIST, {"reason": "confidence_below"}))) == sorted([decided.pk, other.pk, old.pk])
    assert case_ids(client.get(LIST, {"reason": "high_stakes"})) == []
    assert case_ids(client.get(LIST, {"reviewer": "rev1"})) == [decided.pk]
    assert case_ids(client.get(LIST, {"reviewer": "nobody"})) == []
    assert case_ids(client.get(LIST, {"received_from": "2025-01-15", "received_to": "2025-01-15"})) == [old.pk]
    assert old.pk not in case_ids(client.get(LIST, {"received_from": "2025-01-16"}))
    # Bad filter values are form errors, never a 500 and never "everything".
    for params in ({"status": "lost"}, {"received_from": "soon"}, {"q": "a\x00b"},
                   {"received_from": "2025-02-01", "received_to": "2025-01-01"}):
        response = client.get(LIST, params)
        assert response.status_code == 200
        assert case_ids(response) == []
        assert 'role="alert"' in response.content.decode()


def test_keyset_pages(make_user, settings):
    from records import views

    officer = make_user("compliance_officer")
    base = timezone.now() - dt.timedelta(hours=1)
    cases = [make_case(f"app-{n}", confidence=0.99) for n in range(views.PAGE_SIZE + 5)]
    # Two cases received at the same instant: the id breaks the tie, none is lost or repeated.
    for index, case in enumerate(cases):
        Case.objects.filter(pk=case.pk).update(received_at=base + dt.timedelta(seconds=index // 2))
    client = client_for(officer)
    first = client.get(LIST, {"system": "credit-scoring"})
    page1 = case_ids(first)
    assert len(page1) == views.PAGE_SIZE
    cursor = re.search(r'href="\?([^"]*after=[^"]+)">Older', first.content.decode()).group(1).replace("&amp;", "&")
    page2 = case_ids(client.get(f"{LIST}?{cursor}"))
    expected = [c.pk for c in sorted(cases, key=lambda c: (Case.objects.get(pk=c.pk).received_at, c.pk),
                                     reverse=True)]
    assert page1 + page2 == expected
    # A forged or broken cursor shows the first page.
    assert case_ids(client.get(LIST, {"after": "garbage~x"})) == page1
    assert case_ids(client.get(LIST, {"after": f"2026-01-01T00:00:00~{2**70}"})) == page1


def test_list_query_count_is_pinned(make_user, django_assert_num_queries):
    officer = make_user("compliance_officer")
    client = client_for(officer)
    for n in range(3):
        make_case(f"app-{n}", confidence=0.5)
    # session, user, the user's groups (role), the unread-alerts count of the header, the systems of the
    # filter, one page of cases
    with django_assert_num_queries(6):
        assert len(case_ids(client.get(LIST, {"reason": "confidence_below"}))) == 3
    for n in range(3, 20):
        make_case(f"app-{n}", confidence=0.5)
    with django_assert_num_queries(6):
        assert len(case_ids(client.get(LIST, {"reason": "confidence_below"}))) == 20


def test_timeline_shows_events_and_changes_in_order(make_user):
    case, _reviewer, officer = decided_case(make_user)
    incident = file_incident(actor=officer, kind="serious_harm", aware_at=timezone.now(), case=case,
                             title="Wrongful refusal")
    page = client_for(make_user("manager")).get(f"{LIST}{case.pk}/").content.decode()
    timeline = page[page.index('id="timeline"'):]
    # Every audit event of the case, in time order.
    order = [timeline.index(a) for a in ("case.created", "case.routed", "case.claimed", "decision.recorded",
                                         "case.decided", "case.reopened", "incident.created")]
    assert order == sorted(order)
    # Who and why.
    assert "by <strong>rev1</strong>" in timeline and "by <strong>officer1</strong>" in timeline
    assert "Applicant appealed (Art. 86)." in timeline
    assert "Income is not documented." in timeline  # the decision's rationale, from its history
    # Field diffs from the history rows.
    assert "status: <code>queued</code> → <code>claimed</code>" in timeline
    assert "claimed_by: <code>—</code> → <code>rev1</code>" in timeline
    assert "status: <code>decided</code> → <code>escalated</code>" in timeline
    assert "final_label: <code>reject</code> → <code>—</code>" in timeline
    assert "decision #" in timeline and "by rev1" in timeline
    assert f'href="/compliance/incidents/{incident.pk}/"' in timeline
    # Personal data stays out: the input is referred to by its hash.
    assert "Loan application" not in page
    assert case.input_hash in page


def test_case_page_query_count_is_pinned(make_user, django_assert_num_queries):
    case, reviewer, officer = decided_case(make_user)
    client = client_for(officer)
    # session, user, groups, the case, its events, its history, its decisions' history, the users named
    with django_assert_num_queries(9):
        assert client.get(f"{LIST}{case.pk}/").status_code == 200
    second = make_case("app-2", confidence=0.6)
    claimed = claim_next(reviewer=reviewer)
    decision_record(reviewer=reviewer, case=claimed, outcome="approve", label=None, rationale="")
    with django_assert_num_queries(9):
        assert client.get(f"{LIST}{second.pk}/").status_code == 200


def test_admin_history_pages_show_diffs(make_user):
    case, _reviewer, officer = decided_case(make_user)
    system = case.system
    system_update(actor=officer, system=system, changes={"purpose": "Scores loan applications."},
                  reason="Clarified purpose.")
    point = case.intervention_point
    intervention_point_update(actor=officer, point=point, changes={"confidence_below": 0.7}, reason="Tuned.")
    admin = client_for(make_user("admin"))
    for url, diff in [
        (f"/admin/reviews/case/{case.pk}/history/", "Claimed by"),
        (f"/admin/reviews/aisystem/{system.pk}/history/", "Purpose"),
        (f"/admin/reviews/interventionpoint/{point.pk}/history/", "Confidence below"),
    ]:
        response = admin.get(url)
        assert response.status_code == 200, url
        content = response.content.decode()
        assert ">Changes<" in content
        assert f"<strong>{diff}:</strong>" in content, url
