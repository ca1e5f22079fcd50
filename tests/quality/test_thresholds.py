"""Threshold recommendations: the curve against a brute-force oracle, applying one (confirmed, audited)."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.models import AuditEvent
from quality.selectors import threshold_curve
from reviews.models import Case, InterventionPoint
from tests.quality.helpers import example_rows, ground_truth, make_point, make_user, page_client

pytestmark = pytest.mark.django_db


def oracle(rows: list[tuple[float, bool]], target: float) -> tuple[list[tuple[float, float | None]], float | None]:
    """Brute force over t = k/100 with the routing rule's own comparison (confidence < t routes)."""
    curve = []
    for k in range(101):
        t = k / 100
        auto = [correct for confidence, correct in rows if not confidence < t]
        review = (len(rows) - len(auto)) / len(rows)
        curve.append((review, (auto.count(False) / len(auto)) if auto else None))
    recommended = next((round(k / 100, 2) for k, (_, error) in enumerate(curve)
                        if error is not None and error <= target), None)
    return curve, recommended


def same_curve(curve: dict, expected: list[tuple[float, float | None]]) -> bool:
    got = [(r["review_rate"], r["error_rate"]) for r in curve["curve"]]
    assert len(got) == len(expected)
    for step, (a, b) in enumerate(zip(got, expected, strict=True)):
        same_error = (a[1] is None and b[1] is None) or (
            a[1] is not None and b[1] is not None and a[1] == pytest.approx(b[1]))
        assert a[0] == pytest.approx(b[0]) and same_error, (step, a, b)
    return True


def test_curve_and_recommendation_match_brute_force() -> None:
    point = make_point(confidence_below=0.8)
    rows = example_rows()
    ground_truth(point, rows)
    ground_truth(point, [(0.99, False)] * 20, gold=True)  # gold items are not ground truth of the model
    curve = threshold_curve(point=point, target_error=0.05)
    expected, recommended = oracle(rows, 0.05)
    assert curve["ground_truth_cases"] == 100 and curve["enough_ground_truth"]
    assert same_curve(curve, expected)
    # From 0.57 up, 2 of the 43 auto-accepted cases are wrong (4.7 % ≤ 5 %).
    assert curve["recommended_threshold"] == recommended == 0.57
    assert curve["current_threshold"] == 0.8 and curve["current"]["threshold"] == 0.8
    assert curve["recommended"]["review_rate"] == pytest.approx(0.57)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.tuples(
            st.one_of(st.integers(0, 100).map(lambda k: k / 100), st.floats(0, 1, allow_nan=False)),
            st.booleans(),
        ),
        min_size=50, max_size=120,
    ),
    target=st.sampled_from([0.0, 0.02, 0.1, 0.3]),
)
def test_curve_matches_brute_force_on_random_data(rows, target) -> None:
    # Confidences exactly on the grid (0.29, 0.57...) are the float-rounding trap.
    point = InterventionPoint.objects.filter(slug="loan-review").first() or make_point()
    Case.objects.all().delete()
    ground_truth(point, rows)
    curve = threshold_curve(point=point, target_error=target)
    expected, recommended = oracle(rows, target)
    assert same_curve(curve, expected)
    assert curve["recommended_threshold"] == recommended


def test_not_enough_ground_truth_gives_no_recommendation(settings) -> None:
    point = make_point()
    ground_truth(point, [(0.9, True)] * 49)
    curve = threshold_curve(point=point)
    assert curve["enough_ground_truth"] is False and curve["recommended_threshold"] is None
    settings.HITL_THRESHOLD_MIN_GROUND_TRUTH = 40
    assert threshold_curve(point=point)["recommended_threshold"] == 0.0


def url(point: InterventionPoint, suffix: str = "") -> str:
    return f"/api/v1/systems/{point.system.slug}/intervention-points/{point.slug}/threshold-recommendation/{suffix}"


@pytest.mark.parametrize("role", ["manager", "compliance_officer", "admin"])
def test_recommendation_api_allowed(api_client_for, role) -> None:
    point = make_point()
    ground_truth(point, example_rows())
    response = api_client_for(role).get(url(point), {"target": 0.05})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["recommended_threshold"] == 0.57 and len(body["curve"]) == 101 and body["target_error"] == 0.05


def test_recommendation_api_denied_and_bad_input(api_client_for, anon_client) -> None:
    point = make_point()
    assert api_client_for("reviewer").get(url(point)).status_code == 403
    assert api_client_for("integration").get(url(point)).status_code == 403
    assert anon_client.get(url(point)).status_code == 401
    client = api_client_for("manager")
    assert client.get(url(point), {"target": 3}).json().keys() == {"target"}
    assert client.get("/api/v1/systems/credit-scoring/intervention-points/nope/threshold-recommendation/"
                      ).status_code == 404


def test_applying_a_threshold_needs_confirmation_and_is_audited(api_client_for, anon_client) -> None:
    point = make_point(confidence_below=0.8)
    ground_truth(point, example_rows())
    officer = api_client_for("compliance_officer")
    apply_url = url(point, "apply/")
    for data, field in [({"threshold": 0.59, "reason": "r", "confirm": False}, "confirm"),
                        ({"threshold": 0.59, "reason": "r"}, "confirm"),
                        ({"threshold": 0.59, "reason": "", "confirm": True}, "reason"),
                        ({"threshold": 0.595, "reason": "r", "confirm": True}, "threshold"),
                        ({"threshold": 1.5, "reason": "r", "confirm": True}, "threshold")]:
        response = officer.post(apply_url, data, format="json")
        assert response.status_code == 400 and field in response.json(), (data, response.json())
    assert api_client_for("manager").post(apply_url, {"threshold": 0.59, "reason": "r", "confirm": True},
                                          format="json").status_code == 403
    assert anon_client.post(apply_url, {}, format="json").status_code == 401
    point.refresh_from_db()
    assert point.confidence_below == 0.8 and point.version == 1

    response = officer.post(apply_url, {"threshold": 0.59, "reason": "Quarterly review of the threshold.",
                                        "confirm": True, "target": 0.05}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json() == {"confidence_below": 0.59, "version": 2}
    point.refresh_from_db()
    assert point.confidence_below == 0.59 and point.version == 2
    updated = AuditEvent.objects.get(action="intervention_point.updated")
    applied = AuditEvent.objects.get(action="threshold.applied")
    assert updated.actor_id == applied.actor_id == officer.user.pk
    assert applied.reason == "Quarterly review of the threshold."
    payload = json.loads(applied.payload)
    assert payload["before"] == {"confidence_below": "0.8"} and payload["after"]["confidence_below"] == "0.59"
    assert payload["data"]["recommended_threshold"] == "0.57" and payload["data"]["ground_truth_cases"] == 100


def test_applying_without_enough_ground_truth_is_refused(api_client_for) -> None:
    point = make_point()
    ground_truth(point, [(0.9, True)] * 10)
    response = api_client_for("compliance_officer").post(
        url(point, "apply/"), {"threshold": 0.5, "reason": "r", "confirm": True}, format="json")
    assert response.status_code == 400 and "ground truth" in response.json()["threshold"][0]
    assert not AuditEvent.objects.filter(action="threshold.applied").exists()


def test_threshold_pages_show_the_curve_and_apply_on_confirmation() -> None:
    point = make_point(confidence_below=0.8)
    make_point(point.system, "limit-review")
    ground_truth(point, example_rows())
    officer = make_user("compliance_officer")
    client = page_client(officer)
    listing = client.get(reverse("quality:thresholds")).content.decode()
    assert "Curve and recommendation" in listing and "not enough ground truth yet" in listing
    detail_url = reverse("quality:threshold", args=[point.system.slug, point.slug])
    page = client.get(detail_url)
    html = page.content.decode()
    assert page.status_code == 200 and "<svg" in html and 'class="review"' in html and "<polyline" in html
    assert 'data-testid="threshold-form"' in html
    unconfirmed = client.post(detail_url, {"threshold": "0.59", "reason": "Review."})
    assert unconfirmed.status_code == 400
    point.refresh_from_db()
    assert point.confidence_below == 0.8
    response = client.post(detail_url, {"threshold": "0.59", "reason": "Review.", "confirm": "on"})
    assert response.status_code == 302
    point.refresh_from_db()
    assert point.confidence_below == 0.59
    assert AuditEvent.objects.filter(action="threshold.applied", actor_id=officer.pk).count() == 1
    manager = page_client(make_user("manager"))
    assert 'data-testid="threshold-form"' not in manager.get(detail_url).content.decode()
    assert manager.post(detail_url, {"threshold": "0.5", "reason": "x", "confirm": "on"}).status_code == 403
    assert page_client(make_user("reviewer")).get(detail_url).status_code == 403
