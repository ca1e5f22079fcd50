"""REST API of AI systems and intervention points (api-v1: "AI systems and intervention points")."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from reviews.models import AISystem, InterventionPoint, SystemStatus
from tests.reviews.account_helpers import (
    assert_field_error,
    make_point,
    make_system,
    point_body,
    system_body,
)

SYSTEMS = "/api/v1/systems/"
READ_ROLES = ["compliance_officer", "manager", "reviewer", "integration", "admin"]
DENIED_WRITERS = ["manager", "reviewer", "integration"]

pytestmark = pytest.mark.django_db


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def system_url(slug: str, suffix: str = "") -> str:
    return f"{SYSTEMS}{slug}/{suffix}"


def points_url(slug: str, point: str | None = None) -> str:
    return f"{SYSTEMS}{slug}/intervention-points/" + (f"{point}/" if point else "")


# --- POST /systems/ ----------------------------------------------------------------------


def test_compliance_officer_registers_a_system(api_client_for: Any) -> None:
    client = api_client_for("compliance_officer")
    response = client.post(SYSTEMS, system_body(), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["slug"] == "credit-scoring"
    assert body["status"] == "active"
    assert body["risk_tier"] == "high"
    assert body["declared_tier"] == "high"
    assert body["classified_tier"] is None
    assert body["annex_iii_area"] == "5b"
    assert body["labels"] == ["approve", "reject"]
    assert body["positive_label"] == "approve"
    assert body["protected_attributes"] == ["gender", "age_band"]
    system = AISystem.objects.get(slug="credit-scoring")
    assert system.declared_tier == "high"
    [event] = events("system.created")
    assert event.actor_id == client.user.pk
    assert event.system_id == system.pk
    assert system.history.latest().history_user == client.user


def test_admin_registers_a_system(api_client_for: Any) -> None:
    response = api_client_for("admin").post(SYSTEMS, system_body(), format="json")
    assert response.status_code == 201


def test_prohibited_tier_registers_the_system_blocked(api_client_for: Any) -> None:
    client = api_client_for("compliance_officer")
    response = client.post(SYSTEMS, system_body(slug="social-score", risk_tier="prohibited"), format="json")
    assert response.status_code == 201
    assert response.json()["status"] == "blocked"
    assert [e.object_label for e in events("system.blocked")] == ["Credit scoring"]


def test_annex_point_is_normalised_and_optional_fields_default(api_client_for: Any) -> None:
    body = system_body(annex_iii_area="5B")
    for optional in ("risk_tier", "positive_label", "protected_attributes"):
        body.pop(optional)
    response = api_client_for("compliance_officer").post(SYSTEMS, body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["annex_iii_area"] == "5b"
    assert response.json()["risk_tier"] is None
    assert response.json()["positive_label"] is None
    assert response.json()["protected_attributes"] == []


@pytest.mark.parametrize("role", DENIED_WRITERS)
def test_other_roles_may_not_register_systems(api_client_for: Any, role: str) -> None:
    response = api_client_for(role).post(SYSTEMS, system_body(), format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert not AISystem.objects.exists()


def test_registering_needs_authentication(anon_client: Any) -> None:
    response = anon_client.post(SYSTEMS, system_body(), format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("labels", []),
        ("labels", ["approve", "approve"]),
        ("labels", ["approve", ""]),
        ("labels", ["approve", "   "]),
        ("labels", "approve"),
        ("labels", [1, 2]),
        ("labels", [["nested"]]),
        ("labels", ["x" * 101]),
        ("annex_iii_area", "9a"),
        ("annex_iii_area", "5z"),
        ("annex_iii_area", "2a"),
        ("annex_iii_area", "1"),
        ("annex_iii_area", "five"),
        ("annex_iii_area", 5),
        ("role", "owner"),
        ("role", ["deployer"]),
        ("risk_tier", "extreme"),
        ("risk_tier", 3),
        ("slug", "not a slug"),
        ("slug", "x" * 81),
        ("slug", None),
        ("name", 123),
        ("name", ""),
        ("name", "n" * 201),
        ("name", {"a": 1}),
        ("purpose", None),
        ("positive_label", "maybe"),
        ("protected_attributes", ["gender", "gender"]),
        ("protected_attributes", "gender"),
        ("is_public_body", "yes"),
        ("is_public_body", 1),
        ("retention_days", 10),
        ("retention_days", "200"),
        ("retention_days", 2**40),
        ("retention_days", 200.5),
        ("bias_thresholds", {"disparate_impact_ratio": "high"}),
        ("bias_thresholds", [0.8]),
        ("kpi_targets", {"": 0.85}),
        ("status", "halted"),
        ("classified_tier", "minimal"),
        ("nonsense", 1),
    ],
)
def test_bad_registration_is_a_400_naming_the_field(api_client_for: Any, field: str, value: Any) -> None:
    response = api_client_for("compliance_officer").post(SYSTEMS, system_body(**{field: value}), format="json")
    assert_field_error(response, field)
    assert not AISystem.objects.exists()


@pytest.mark.parametrize("field", ["slug", "name", "purpose", "provider", "role", "sector", "labels"])
def test_required_registration_fields(api_client_for: Any, field: str) -> None:
    body = system_body()
    body.pop(field)
    assert_field_error(api_client_for("compliance_officer").post(SYSTEMS, body, format="json"), field)


def test_duplicate_slug_is_a_400_naming_slug(api_client_for: Any) -> None:
    make_system()
    response = api_client_for("compliance_officer").post(SYSTEMS, system_body(), format="json")
    assert_field_error(response, "slug")


# --- GET /systems/, /systems/{slug}/ ---------------------------------------------------------------


@pytest.mark.parametrize("role", READ_ROLES)
def test_every_role_reads_the_register(api_client_for: Any, role: str) -> None:
    make_system("b-system")
    make_system("a-system")
    client = api_client_for(role)
    response = client.get(SYSTEMS)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"next", "previous", "results"}
    assert [s["slug"] for s in body["results"]] == ["a-system", "b-system"]
    detail = client.get(system_url("a-system"))
    assert detail.status_code == 200
    assert detail.json()["slug"] == "a-system"


def test_reading_the_register_needs_authentication(anon_client: Any) -> None:
    make_system()
    assert anon_client.get(SYSTEMS).status_code == 401
    assert anon_client.get(system_url("credit-scoring")).status_code == 401


def test_system_list_pages_by_cursor(api_client_for: Any) -> None:
    for index in range(5):
        make_system(f"system-{index}")
    client = api_client_for("manager")
    first = client.get(SYSTEMS, {"page_size": 2}).json()
    assert [s["slug"] for s in first["results"]] == ["system-0", "system-1"]
    assert first["previous"] is None and first["next"]
    second = client.get(first["next"]).json()
    assert [s["slug"] for s in second["results"]] == ["system-2", "system-3"]


def test_system_list_has_no_n_plus_one(api_client_for: Any) -> None:
    client = api_client_for("manager")
    make_system("s-1")
    with CaptureQueriesContext(connection) as few:
        assert client.get(SYSTEMS).status_code == 200
    for index in range(2, 7):
        make_system(f"s-{index}")
    with CaptureQueriesContext(connection) as many:
        assert len(client.get(SYSTEMS).json()["results"]) == 6
    assert len(many) == len(few)


def test_classified_tier_wins_in_the_representation(api_client_for: Any) -> None:
    system = make_system(risk_tier="minimal")
    system.classified_tier = "high"
    system.save(update_fields=["classified_tier"])
    body = api_client_for("reviewer").get(system_url(system.slug)).json()
    assert (body["risk_tier"], body["declared_tier"], body["classified_tier"]) == ("high", "minimal", "high")


@pytest.mark.parametrize("slug", ["no-such-system", "a%00b", "x" * 300, "%ED%A0%80"])
def test_unknown_system_is_a_json_404(api_client_for: Any, slug: str) -> None:
    response = api_client_for("manager").get(system_url(slug))
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


# --- PATCH /systems/{slug}/ ------------------------------------------------------------------


def test_compliance_officer_changes_a_registration_with_history(api_client_for: Any) -> None:
    system = make_system()
    client = api_client_for("compliance_officer")
    versions = system.history.count()
    response = client.patch(system_url(system.slug), {"name": "Credit scoring v2", "risk_tier": "limited",
                                                      "reason": "New model"}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["name"] == "Credit scoring v2"
    assert response.json()["declared_tier"] == "limited"
    system.refresh_from_db()
    assert system.declared_tier == "limited"
    assert system.history.count() == versions + 1
    latest = system.history.latest()
    assert latest.history_user == client.user
    assert latest.declared_tier == "limited"
    [event] = events("system.updated")
    assert event.reason == "New model"
    assert json.loads(event.payload)["after"] == {"declared_tier": "limited", "name": "Credit scoring v2"}


def test_a_patch_that_changes_nothing_writes_no_history(api_client_for: Any) -> None:
    system = make_system()
    versions = system.history.count()
    response = api_client_for("admin").patch(system_url(system.slug), {"name": system.name}, format="json")
    assert response.status_code == 200
    assert system.history.count() == versions
    assert events("system.updated") == []


def test_declaring_prohibited_blocks_and_correcting_it_halts(api_client_for: Any) -> None:
    system = make_system()
    client = api_client_for("compliance_officer")
    response = client.patch(system_url(system.slug), {"risk_tier": "prohibited"}, format="json")
    assert response.json()["status"] == "blocked"
    assert len(events("system.blocked")) == 1
    response = client.patch(system_url(system.slug), {"risk_tier": "high", "reason": "Misfiled"}, format="json")
    # A corrected declaration does not reopen the system silently: it stays under full human review.
    assert response.json()["status"] == "halted"
    assert [e.reason for e in events("system.halted")] == ["Misfiled"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("slug", "renamed"),
        ("labels", []),
        ("labels", ["approve"]),  # drops "reject", which the point still routes on
        ("positive_label", "maybe"),
        ("annex_iii_area", "1z"),
        ("risk_tier", "huge"),
        ("status", "active"),
        ("id", 5),
        ("retention_days", 1),
        ("name", None),
    ],
)
def test_bad_patch_is_a_400_naming_the_field(api_client_for: Any, field: str, value: Any) -> None:
    system = make_system()
    make_point(system)
    response = api_client_for("compliance_officer").patch(system_url(system.slug), {field: value}, format="json")
    assert_field_error(response, field)


def test_moving_into_annex_1a_checks_the_points(api_client_for: Any) -> None:
    system = make_system()
    make_point(system, on_sla_breach="accept_ai", reviewers_required=2)
    response = api_client_for("compliance_officer").patch(system_url(system.slug), {"annex_iii_area": "1a"},
                                                          format="json")
    assert_field_error(response, "annex_iii_area")
    system.refresh_from_db()
    assert system.annex_iii_area == "5b"


@pytest.mark.parametrize("role", DENIED_WRITERS)
def test_other_roles_may_not_change_a_registration(api_client_for: Any, role: str) -> None:
    system = make_system()
    response = api_client_for(role).patch(system_url(system.slug), {"name": "x"}, format="json")
    assert response.status_code == 403
    system.refresh_from_db()
    assert system.name == "Credit scoring"


def test_changing_a_registration_needs_authentication(anon_client: Any) -> None:
    system = make_system()
    assert anon_client.patch(system_url(system.slug), {"name": "x"}, format="json").status_code == 401


def test_patching_an_unknown_system_is_a_404(api_client_for: Any) -> None:
    response = api_client_for("compliance_officer").patch(system_url("nope"), {"name": "x"}, format="json")
    assert response.status_code == 404


# --- halt / resume -------------------------------------------------------------------------------


@pytest.mark.postgres
def test_halt_by_token_is_audited_and_attributed_in_history(api_client_for: Any) -> None:
    """The Art. 14(4)(e) stop: the audit event and the history row both name the token's user."""
    system = make_system()
    client = api_client_for("compliance_officer")
    response = client.post(system_url(system.slug, "halt/"), {"reason": "Drift detected"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "halted"
    [event] = events("system.halted")
    assert (event.actor_id, event.actor_name, event.actor_type) == (client.user.pk, client.user.username, "user")
    assert event.reason == "Drift detected"
    assert event.system_id == system.pk
    latest = system.history.latest()
    assert latest.status == SystemStatus.HALTED
    assert latest.history_user == client.user


def test_halt_then_resume(api_client_for: Any) -> None:
    system = make_system()
    client = api_client_for("admin")
    assert client.post(system_url(system.slug, "halt/"), {"reason": "Incident"}, format="json").json()["status"] \
        == "halted"
    response = client.post(system_url(system.slug, "resume/"), {"reason": "Fixed"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "active"
    [event] = events("system.resumed")
    assert event.reason == "Fixed"
    assert system.history.latest().history_user == client.user


def test_halting_twice_records_one_event(api_client_for: Any) -> None:
    system = make_system()
    client = api_client_for("compliance_officer")
    for _ in range(2):
        assert client.post(system_url(system.slug, "halt/"), {"reason": "Stop"}, format="json").status_code == 200
    assert len(events("system.halted")) == 1


@pytest.mark.parametrize("action", ["halt/", "resume/"])
@pytest.mark.parametrize("role", DENIED_WRITERS)
def test_other_roles_may_not_halt_or_resume(api_client_for: Any, role: str, action: str) -> None:
    system = make_system()
    response = api_client_for(role).post(system_url(system.slug, action), {"reason": "x"}, format="json")
    assert response.status_code == 403
    assert set(response.json()) == {"code", "detail"}


@pytest.mark.parametrize("action", ["halt/", "resume/"])
def test_halt_and_resume_need_authentication(anon_client: Any, action: str) -> None:
    system = make_system()
    assert anon_client.post(system_url(system.slug, action), {"reason": "x"}, format="json").status_code == 401


@pytest.mark.parametrize("action", ["halt/", "resume/"])
@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}, {"reason": 5}, {"reason": None},
                                  {"reason": "r" * 2001}, {"reason": "ok", "extra": 1}])
def test_halt_and_resume_need_a_reason(api_client_for: Any, action: str, body: dict[str, Any]) -> None:
    system = make_system()
    response = api_client_for("compliance_officer").post(system_url(system.slug, action), body, format="json")
    assert response.status_code == 400
    assert set(response.json()) & {"reason", "extra"}
    system.refresh_from_db()
    assert system.status == SystemStatus.ACTIVE


def test_a_blocked_system_cannot_be_halted(api_client_for: Any) -> None:
    system = make_system(risk_tier="prohibited")
    response = api_client_for("compliance_officer").post(system_url(system.slug, "halt/"), {"reason": "x"},
                                                         format="json")
    assert_field_error(response, "status")


def test_halting_an_unknown_system_is_a_404(api_client_for: Any) -> None:
    response = api_client_for("compliance_officer").post(system_url("nope", "halt/"), {"reason": "x"},
                                                         format="json")
    assert response.status_code == 404


# --- intervention points ------------------------------------------------------------------------


def test_compliance_officer_creates_an_intervention_point(api_client_for: Any) -> None:
    system = make_system()
    client = api_client_for("compliance_officer")
    response = client.post(points_url(system.slug), point_body(), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["version"] == 1
    assert body["system"] == system.slug
    assert body["high_stakes"] == [{"field": "amount", "op": "gt", "value": 10000}]
    assert (body["reviewers_required"], body["on_sla_breach"], body["blind_review_rate"], body["gold_rate"]) == (
        1, "escalate", 0.0, 0.0)
    point = InterventionPoint.objects.get(system=system, slug="loan-review")
    assert point.history.latest().history_user == client.user
    [event] = events("intervention_point.created")
    assert event.actor_id == client.user.pk


def test_minimal_intervention_point_gets_the_defaults(api_client_for: Any) -> None:
    system = make_system()
    body = {"slug": "p", "name": "P", "stage": "exception"}
    response = api_client_for("admin").post(points_url(system.slug), body, format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert (data["random_sample_rate"], data["confidence_below"], data["sla_seconds"]) == (0.0, None, None)
    assert (data["always_review_labels"], data["high_stakes"], data["guidelines"]) == ([], [], "")


def test_annex_1a_points_need_four_eyes_and_refuse_accept_ai(api_client_for: Any) -> None:
    system = make_system("face-id", annex_iii_area="1a")
    client = api_client_for("compliance_officer")
    response = client.post(points_url(system.slug), point_body(on_sla_breach="accept_ai"), format="json")
    assert_field_error(response, "on_sla_breach")
    response = client.post(points_url(system.slug), point_body(reviewers_required=1), format="json")
    assert_field_error(response, "reviewers_required")
    response = client.post(points_url(system.slug), point_body(), format="json")
    assert response.status_code == 201
    assert response.json()["reviewers_required"] == 2
    patch = client.patch(points_url(system.slug, "loan-review"), {"on_sla_breach": "accept_ai"}, format="json")
    assert_field_error(patch, "on_sla_breach")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("high_stakes", [{"field": "amount", "op": "between", "value": 1}]),
        ("high_stakes", [{"field": "amount", "op": "gt", "value": "10000"}]),
        ("high_stakes", [{"field": "amount", "op": "gte", "value": True}]),
        ("high_stakes", [{"field": "amount", "op": "lt", "value": None}]),
        ("high_stakes", [{"field": "amount", "op": "in", "value": 5}]),
        ("high_stakes", [{"field": "amount", "op": "in", "value": []}]),
        ("high_stakes", [{"field": "amount", "op": "in", "value": [{"a": 1}]}]),
        ("high_stakes", [{"field": "amount", "op": "eq", "value": {"a": 1}}]),
        ("high_stakes", [{"field": "a..b", "op": "eq", "value": 1}]),
        ("high_stakes", [{"field": "", "op": "eq", "value": 1}]),
        ("high_stakes", [{"field": 7, "op": "eq", "value": 1}]),
        ("high_stakes", [{"field": "amount", "op": "gt"}]),
        ("high_stakes", [{"field": "amount", "op": "gt", "value": 1, "extra": 2}]),
        ("high_stakes", [[1, 2]]),
        ("high_stakes", {"field": "amount"}),
        ("high_stakes", "amount > 5"),
        ("confidence_below", 1.5),
        ("confidence_below", -0.1),
        ("confidence_below", "0.5"),
        ("confidence_below", True),
        ("random_sample_rate", 2),
        ("random_sample_rate", None),
        ("blind_review_rate", -1),
        ("gold_rate", 1.01),
        ("reviewers_required", 0),
        ("reviewers_required", 11),
        ("reviewers_required", 2.5),
        ("reviewers_required", "2"),
        ("sla_seconds", 0),
        ("sla_seconds", 2**31),
        ("sla_seconds", "3600"),
        ("on_sla_breach", "ignore"),
        ("stage", "review"),
        ("stage", None),
        ("always_review_labels", ["maybe"]),
        ("always_review_labels", ["reject", "reject"]),
        ("always_review_labels", "reject"),
        ("slug", "bad slug"),
        ("name", ""),
        ("guidelines", 5),
        ("guidelines", "g" * 20001),
        ("version", 7),
        ("surprise", True),
    ],
)
def test_bad_rules_are_a_400_naming_the_field(api_client_for: Any, field: str, value: Any) -> None:
    system = make_system()
    response = api_client_for("compliance_officer").post(points_url(system.slug), point_body(**{field: value}),
                                                         format="json")
    assert_field_error(response, field)
    assert not InterventionPoint.objects.exists()


@pytest.mark.parametrize(
    "condition",
    [
        {"field": "applicant.income", "op": "lte", "value": 1500.5},
        {"field": "country", "op": "in", "value": ["FR", "DE", None, 3, True]},
        {"field": "flag", "op": "eq", "value": True},
        {"field": "note", "op": "ne", "value": None},
        {"field": "amount", "op": "gte", "value": 0},
    ],
)
def test_valid_high_stakes_conditions(api_client_for: Any, condition: dict[str, Any]) -> None:
    system = make_system()
    response = api_client_for("compliance_officer").post(
        points_url(system.slug), point_body(high_stakes=[condition]), format="json"
    )
    assert response.status_code == 201, response.json()
    assert InterventionPoint.objects.get().high_stakes == [condition]


def test_non_finite_numbers_are_refused_naming_the_field(api_client_for: Any) -> None:
    system = make_system()
    raw = json.dumps(point_body()).replace('"confidence_below": 0.7', '"confidence_below": 1e999')
    response = api_client_for("compliance_officer").post(points_url(system.slug), raw,
                                                         content_type="application/json")
    assert_field_error(response, "confidence_below")
    raw = json.dumps(point_body()).replace('"value": 10000', '"value": -1e999')
    response = api_client_for("compliance_officer").post(points_url(system.slug), raw,
                                                         content_type="application/json")
    assert_field_error(response, "high_stakes[0].value")


def test_duplicate_point_slug_is_a_400(api_client_for: Any) -> None:
    system = make_system()
    make_point(system)
    response = api_client_for("compliance_officer").post(points_url(system.slug), point_body(), format="json")
    assert_field_error(response, "slug")


def test_same_point_slug_on_another_system_is_fine(api_client_for: Any) -> None:
    make_point(make_system("one"))
    response = api_client_for("compliance_officer").post(points_url(make_system("two").slug), point_body(),
                                                         format="json")
    assert response.status_code == 201


@pytest.mark.parametrize("role", DENIED_WRITERS)
def test_other_roles_may_not_create_points(api_client_for: Any, role: str) -> None:
    system = make_system()
    assert api_client_for(role).post(points_url(system.slug), point_body(), format="json").status_code == 403
    assert not InterventionPoint.objects.exists()


def test_creating_points_needs_authentication(anon_client: Any) -> None:
    system = make_system()
    assert anon_client.post(points_url(system.slug), point_body(), format="json").status_code == 401


def test_creating_a_point_on_an_unknown_system_is_a_404(api_client_for: Any) -> None:
    response = api_client_for("compliance_officer").post(points_url("nope"), point_body(), format="json")
    assert response.status_code == 404


@pytest.mark.parametrize("role", READ_ROLES)
def test_every_role_lists_points(api_client_for: Any, role: str) -> None:
    system = make_system()
    make_point(system, "b-point")
    make_point(system, "a-point")
    make_point(make_system("other"), "c-point")
    client = api_client_for(role)
    response = client.get(points_url(system.slug))
    assert response.status_code == 200
    assert [p["slug"] for p in response.json()["results"]] == ["a-point", "b-point"]
    assert client.get(points_url(system.slug, "a-point")).json()["name"] == "Loan review"


def test_listing_points_needs_authentication(anon_client: Any) -> None:
    system = make_system()
    assert anon_client.get(points_url(system.slug)).status_code == 401


def test_point_list_has_no_n_plus_one(api_client_for: Any) -> None:
    system = make_system()
    client = api_client_for("reviewer")
    make_point(system, "p-1")
    with CaptureQueriesContext(connection) as few:
        assert client.get(points_url(system.slug)).status_code == 200
    for index in range(2, 6):
        make_point(system, f"p-{index}")
    with CaptureQueriesContext(connection) as many:
        assert len(client.get(points_url(system.slug)).json()["results"]) == 5
    assert len(many) == len(few)


def test_unknown_points_are_404(api_client_for: Any) -> None:
    system = make_system()
    client = api_client_for("compliance_officer")
    assert client.get(points_url("nope")).status_code == 404
    assert client.get(points_url(system.slug, "nope")).status_code == 404
    assert client.patch(points_url(system.slug, "nope"), {"gold_rate": 0.1}, format="json").status_code == 404
    assert client.get(points_url(system.slug, "a%00b")).status_code == 404


def test_changing_rules_bumps_the_version(api_client_for: Any) -> None:
    system = make_system()
    point = make_point(system)
    client = api_client_for("compliance_officer")
    response = client.patch(points_url(system.slug, point.slug),
                            {"confidence_below": 0.8, "high_stakes": [], "reason": "Tighter"}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["version"] == 2
    assert response.json()["confidence_below"] == 0.8
    assert response.json()["high_stakes"] == []
    assert response.json()["random_sample_rate"] == 0.05  # untouched: PATCH applies no defaults
    [event] = events("intervention_point.updated")
    assert event.reason == "Tighter"
    assert json.loads(event.payload)["after"]["version"] == 2
    point.refresh_from_db()
    assert point.history.latest().history_user == client.user
    # The same values again: no change, no new version, no event.
    response = client.patch(points_url(system.slug, point.slug), {"confidence_below": 0.8}, format="json")
    assert response.json()["version"] == 2
    assert len(events("intervention_point.updated")) == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [("slug", "renamed"), ("version", 9), ("gold_rate", 3), ("reviewers_required", 0),
     ("high_stakes", [{"field": "x", "op": "in", "value": 1}]), ("always_review_labels", ["unknown"]),
     ("stage", None), ("sla_seconds", -5)],
)
def test_bad_rule_changes_are_a_400_naming_the_field(api_client_for: Any, field: str, value: Any) -> None:
    system = make_system()
    point = make_point(system)
    response = api_client_for("compliance_officer").patch(points_url(system.slug, point.slug), {field: value},
                                                          format="json")
    assert_field_error(response, field)
    point.refresh_from_db()
    assert point.version == 1


@pytest.mark.parametrize("role", DENIED_WRITERS)
def test_other_roles_may_not_change_rules(api_client_for: Any, role: str) -> None:
    system = make_system()
    point = make_point(system)
    response = api_client_for(role).patch(points_url(system.slug, point.slug), {"gold_rate": 0.2}, format="json")
    assert response.status_code == 403
    point.refresh_from_db()
    assert point.version == 1


def test_changing_rules_needs_authentication(anon_client: Any) -> None:
    system = make_system()
    point = make_point(system)
    assert anon_client.patch(points_url(system.slug, point.slug), {"gold_rate": 0.2},
                             format="json").status_code == 401
