"""A system's ``bias_thresholds``: strictly validated, whole numbers coerced, and applied by the audit."""

from __future__ import annotations

import pytest

from fairness.metrics import resolve_min_group_size, resolve_thresholds
from reviews.models import AISystem
from reviews.rules import BIAS_THRESHOLD_KEYS

pytestmark = pytest.mark.django_db

URL = "/api/v1/systems/"


def body(**extra):
    return {"slug": "compas", "name": "COMPAS", "purpose": "recidivism", "provider": "x", "role": "deployer",
            "sector": "justice", "labels": ["low", "high"], "positive_label": "low", **extra}


def test_min_group_size_given_as_json_number_is_stored_as_int_and_applied(api_client_for) -> None:
    officer = api_client_for("compliance_officer")
    response = officer.post(URL, body(bias_thresholds={"min_group_size": 20, "disparate_impact_min": 0.75}),
                            format="json")
    assert response.status_code == 201, response.json()
    stored = AISystem.objects.get(slug="compas").bias_thresholds
    assert stored == {"min_group_size": 20, "disparate_impact_min": 0.75}
    assert isinstance(stored["min_group_size"], int)
    assert resolve_min_group_size(stored, 30) == 20
    assert resolve_thresholds(stored)["disparate_impact_min"] == 0.75


def test_a_float_stored_before_validation_is_still_applied() -> None:
    assert resolve_min_group_size({"min_group_size": 20.0}, 30) == 20
    assert resolve_min_group_size({"min_group_size": 20.5}, 30) == 30


@pytest.mark.parametrize(("thresholds", "named"), [
    ({"disparate_impact_ratio": 0.8}, "disparate_impact_ratio"),
    ({"whatever": 1}, "whatever"),
    ({"min_group_size": 20.5}, "min_group_size"),
    ({"min_group_size": 0}, "min_group_size"),
    ({"disparate_impact_min": 1.5}, "disparate_impact_min"),
])
def test_bad_thresholds_are_refused_naming_the_key(api_client_for, thresholds, named) -> None:
    officer = api_client_for("compliance_officer")
    response = officer.post(URL, body(bias_thresholds=thresholds), format="json")
    assert response.status_code == 400
    messages = response.json()["bias_thresholds"]
    assert any(named in message for message in messages), messages
    assert not AISystem.objects.filter(slug="compas").exists()


def test_patch_refuses_unknown_keys_and_keeps_what_was_stored(api_client_for) -> None:
    officer = api_client_for("compliance_officer")
    assert officer.post(URL, body(bias_thresholds={"min_group_size": 25}), format="json").status_code == 201
    response = officer.patch(f"{URL}compas/", {"bias_thresholds": {"disparate_impact_ratio": 0.8}}, format="json")
    assert response.status_code == 400
    assert "disparate_impact_min" in " ".join(response.json()["bias_thresholds"])  # the hint
    assert AISystem.objects.get(slug="compas").bias_thresholds == {"min_group_size": 25}


def test_the_schema_documents_every_key(api_client_for) -> None:
    schema = api_client_for("compliance_officer").get("/api/schema/", {"format": "json"}).json()
    text = str(schema)
    for key in BIAS_THRESHOLD_KEYS:
        assert key in text


def test_fairness_defaults_cover_the_validated_keys() -> None:
    assert set(resolve_thresholds({})) | {"min_group_size"} == set(BIAS_THRESHOLD_KEYS)
