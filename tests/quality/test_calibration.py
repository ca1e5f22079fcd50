"""Calibration sessions: every reviewer answers every item once; agreement and accuracy results."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from quality import stats
from quality.models import CalibrationSession, GoldServing
from reviews.selectors.queue import claim_payload
from reviews.services.queue import claim_next
from tests.quality.helpers import decide, gold_item, make_point, make_reviewer, make_system, make_user, page_client

pytestmark = pytest.mark.django_db

URL = "/api/v1/calibration-sessions/"


@pytest.fixture
def setup():
    point = make_point()
    items = [gold_item(point, gold_label=label) for label in ("approve", "reject", "refer")]
    reviewers = [make_reviewer(f"cal{i}") for i in range(3)]
    return point, items, reviewers


def create(client, items, reviewers, **extra):
    return client.post(URL, {"name": "March calibration", "items": [i.pk for i in items],
                             "reviewers": [r.username for r in reviewers], **extra}, format="json")


@pytest.mark.parametrize("role", ["compliance_officer", "admin"])
def test_officer_starts_a_session_with_one_copy_per_reviewer_and_item(api_client_for, setup, role) -> None:
    _, items, reviewers = setup
    client = api_client_for(role)
    response = create(client, items, reviewers)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["items"] == 3 and [r["assigned"] for r in body["reviewers"]] == [3, 3, 3]
    session = CalibrationSession.objects.get(pk=body["id"])
    servings = GoldServing.objects.filter(session=session)
    assert servings.count() == 9
    assert {(s.item_id, s.reviewer_id) for s in servings} == {(i.pk, r.pk) for i in items for r in reviewers}
    assert len({s.case_id for s in servings}) == 9
    event = AuditEvent.objects.get(action="calibration.created")
    assert event.actor_id == client.user.pk and json.loads(event.payload)["data"]["copies"] == 9
    assert sum('"kind":"serving"' in e.payload for e in AuditEvent.objects.filter(action="gold.created")) == 9


@pytest.mark.parametrize("role", ["manager", "reviewer", "integration"])
def test_other_roles_may_not_start_sessions(api_client_for, setup, role) -> None:
    _, items, reviewers = setup
    assert create(api_client_for(role), items, reviewers).status_code == 403
    assert not CalibrationSession.objects.exists()


def test_anonymous_is_401(anon_client, setup) -> None:
    _, items, reviewers = setup
    assert create(anon_client, items, reviewers).status_code == 401
    assert anon_client.get(URL).status_code == 401
    assert anon_client.get(f"{URL}1/").status_code == 401


def test_bad_sessions_are_400_naming_the_field(api_client_for, setup) -> None:
    _, items, reviewers = setup
    client = api_client_for("compliance_officer")
    assert create(client, items, reviewers[:1]).json().keys() == {"reviewers"}
    assert create(client, [], reviewers).json().keys() == {"items"}
    assert client.post(URL, {"name": "", "items": [items[0].pk], "reviewers": [r.username for r in reviewers]},
                       format="json").json().keys() == {"name"}
    assert client.post(URL, {"name": "x", "items": [999999], "reviewers": [r.username for r in reviewers]},
                       format="json").json().keys() == {"items"}
    assert client.post(URL, {"name": "x", "items": [items[0].pk], "reviewers": ["ghost", reviewers[0].username]},
                       format="json").json().keys() == {"reviewers"}
    unqualified = make_reviewer("elsewhere", systems=[make_system("fraud-check")])
    response = create(client, items, [reviewers[0], unqualified])
    assert response.status_code == 400 and "not qualified" in response.json()["reviewers"][0]
    manager = make_user("manager")
    assert "not a reviewer" in create(client, items, [reviewers[0], manager]).json()["reviewers"][0]
    assert not CalibrationSession.objects.exists()


def test_each_reviewer_gets_every_item_once_through_the_queue(api_client_for, setup) -> None:
    _, items, reviewers = setup
    create(api_client_for("compliance_officer"), items, reviewers)
    for reviewer in reviewers:
        seen = []
        while (case := claim_next(reviewer=reviewer)) is not None:
            payload = claim_payload(case)
            assert "gold" not in json.dumps(payload, default=str).lower()
            seen.append(GoldServing.objects.get(case=case).item_id)
            decide(reviewer, case, "approve")
        assert sorted(seen) == sorted(i.pk for i in items)


def test_results_give_agreement_accuracy_and_the_most_disputed_items(api_client_for, setup) -> None:
    _, items, reviewers = setup
    client = api_client_for("compliance_officer")
    session_id = create(client, items, reviewers).json()["id"]
    answers = {  # item gold labels: approve, reject, refer
        reviewers[0]: ["approve", "reject", "refer"],
        reviewers[1]: ["approve", "reject", "approve"],
        reviewers[2]: ["approve", "approve", "reject"],
    }
    by_item = {}
    for reviewer, labels in answers.items():
        for _ in items:
            case = claim_next(reviewer=reviewer)
            item_index = [i.pk for i in items].index(GoldServing.objects.get(case=case).item_id)
            decide(reviewer, case, labels[item_index])
            by_item.setdefault(item_index, {})[reviewer.username] = labels[item_index]
    body = client.get(f"{URL}{session_id}/").json()
    units = [list(by_item[i].values()) for i in range(3)]
    agreement = body["agreement"]
    assert agreement["percent"] == pytest.approx(stats.percent_agreement(units))
    assert agreement["fleiss_kappa"] == pytest.approx(stats.fleiss_kappa([
        {label: unit.count(label) for label in set(unit)} for unit in units]))
    assert agreement["alpha"] == pytest.approx(stats.krippendorff_alpha_nominal(units))
    assert agreement["kappa"] == agreement["fleiss_kappa"]  # three raters
    pair = next(p for p in agreement["cohen_pairs"] if p["raters"] == ["cal0", "cal1"])
    assert pair["kappa"] == pytest.approx(stats.cohen_kappa(answers[reviewers[0]], answers[reviewers[1]]))
    assert {r["reviewer"]: r["accuracy"] for r in body["reviewers"]} == {"cal0": 1.0, "cal1": 2 / 3, "cal2": 1 / 3}
    assert body["complete"] is True
    # Item 3 (refer / approve / reject) splits the group most; item 1 is unanimous.
    assert [row["item"] for row in body["most_disagreement"]] == [items[2].pk, items[1].pk]
    assert body["most_disagreement"][0]["disagreement"] == pytest.approx(2 / 3)
    listed = client.get(URL).json()["results"]
    assert listed[0]["id"] == session_id and listed[0]["n_items"] == 3 and listed[0]["n_reviewers"] == 3
    assert api_client_for("manager").get(f"{URL}{session_id}/").status_code == 200
    assert api_client_for("reviewer").get(f"{URL}{session_id}/").status_code == 403
    assert client.get(f"{URL}999999/").status_code == 404


def test_calibration_pages(setup) -> None:
    _, items, reviewers = setup
    officer = make_user("compliance_officer")
    client = page_client(officer)
    page = client.get(reverse("quality:calibration"))
    assert page.status_code == 200 and 'data-testid="calibration-form"' in page.content.decode()
    bad = client.post(reverse("quality:calibration"), {"name": "x", "items": [items[0].pk],
                                                        "reviewers": [reviewers[0].pk]})
    assert bad.status_code == 400 and "at least two reviewers" in bad.content.decode()
    response = client.post(reverse("quality:calibration"), {
        "name": "Page session", "items": [i.pk for i in items], "reviewers": [r.pk for r in reviewers]})
    session = CalibrationSession.objects.get(name="Page session")
    assert response.status_code == 302 and response.url == reverse("quality:calibration_detail", args=[session.pk])
    detail = client.get(response.url)
    assert detail.status_code == 200 and "Accuracy per reviewer" in detail.content.decode()
    manager = page_client(make_user("manager"))
    assert 'data-testid="calibration-form"' not in manager.get(reverse("quality:calibration")).content.decode()
    assert manager.post(reverse("quality:calibration"), {"name": "x"}).status_code == 403
    assert page_client(reviewers[0]).get(reverse("quality:calibration_detail", args=[session.pk])).status_code == 403
    assert client.get(reverse("quality:calibration_detail", args=[999999])).status_code == 404
