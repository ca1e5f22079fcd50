"""The pure classification logic (``compliance.classification``): decision order, rationale, applicability."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from compliance.classification import (
    ANNEX_III_AREAS,
    ANNEX_III_POINTS,
    CONDITION_KEYS,
    Answers,
    SystemProfile,
    applicable_date,
    classify,
    condition_holds,
    describe_conditions,
    requirement_applies,
)
from reviews.services.systems import ANNEX_III_POINTS as REGISTRATION_POINTS


def run(**answers: Any):
    return classify(Answers.from_mapping(answers))


def step(result: Any, key: str) -> Any:
    return next(s for s in result.steps if s.key == key)


# --- One test per Annex III area -------------------------------------------------------------

AREA_CASES = [
    ("1a", "remote biometric identification"),
    ("2", "critical infrastructure safety component"),
    ("3b", "evaluating learning outcomes"),
    ("4a", "recruitment"),
    ("5b", "credit scoring"),
    ("6d", "re-offending risk"),
    ("7c", "asylum and visa applications"),
    ("8a", "assisting judicial authorities"),
]


@pytest.mark.parametrize(("point", "use_case"), AREA_CASES, ids=[f"area-{p[0]}" for p, _ in AREA_CASES])
def test_each_annex_iii_area_is_high_risk(point: str, use_case: str) -> None:
    result = run(annex_iii=[point])
    assert result.outcome == "high", use_case
    assert result.tier == "high"
    assert result.annex_iii_area == point
    assert f"Annex III {point[0]}" in " ".join(step(result, "annex_iii").refs)
    assert step(result, "exception_6_3").decisive
    assert "High risk (Annex III" in result.summary


def test_every_annex_iii_area_is_covered_by_the_cases() -> None:
    assert {p[0] for p, _ in AREA_CASES} == set(ANNEX_III_AREAS)


def test_the_wizard_offers_exactly_the_points_registration_accepts() -> None:
    assert set(ANNEX_III_POINTS) == set(REGISTRATION_POINTS)


# --- Art. 6(3) exception and the profiling override ------------------------------------------------


def test_article_6_3_exception_makes_an_annex_iii_system_not_high_risk() -> None:
    result = run(annex_iii=["4a"], exception_6_3=["a"])
    assert result.outcome == "minimal"
    assert result.exception_6_3_applied
    assert not result.profiling_override
    assert result.annex_iii_area == "4a"  # still listed: 6(4) documentation and 49(2) registration apply
    exception = step(result, "exception_6_3")
    assert exception.decisive
    assert "Art. 6(4)" in exception.refs and "Art. 49(2)" in exception.refs
    assert "not high risk under the Art. 6(3) exception" in result.summary
    assert result.as_rationale()["exception_6_3"] == {"claimed": ["a"], "applied": True, "profiling_override": False}


def test_profiling_overrides_the_article_6_3_exception() -> None:
    result = run(annex_iii=["5b"], exception_6_3=["d"], profiling=True)
    assert result.outcome == "high"
    assert result.profiling_override
    assert not result.exception_6_3_applied
    assert "profiles natural persons" in step(result, "exception_6_3").finding


def test_exception_does_not_remove_the_annex_i_ground() -> None:
    result = run(annex_i_product=True, annex_iii=["2"], exception_6_3=["c"])
    assert result.outcome == "high"
    assert result.annex_i
    assert step(result, "annex_i").decisive


def test_annex_i_product_alone_is_high_risk() -> None:
    result = run(annex_i_product=True)
    assert result.outcome == "high"
    assert result.annex_iii_area == ""
    assert "Art. 6(1)" in result.summary


# --- Art. 50 ------------------------------------------------------------------------------------------


def test_art50_duties_stack_with_high_risk() -> None:
    result = run(annex_iii=["4a"], art50=["50.1", "50.3"])
    assert result.outcome == "high"
    assert result.art50_duties == ("50.1", "50.3")
    transparency = step(result, "art50")
    assert "stack with the high-risk duties" in transparency.finding
    assert not transparency.decisive
    assert "with Art. 50 duties 50.1, 50.3" in result.summary


def test_art50_alone_is_limited_risk() -> None:
    result = run(art50=["50.2"])
    assert result.outcome == "limited"
    assert step(result, "art50").decisive
    assert step(result, "art50").refs == ("Art. 50(2)",)


def test_nothing_applies_is_minimal_risk() -> None:
    result = run()
    assert result.outcome == "minimal"
    assert step(result, "minimal").refs == ("Art. 4",)


# --- Prohibited practices and scope -------------------------------------------------------------------


def test_a_prohibited_practice_stops_the_classification() -> None:
    result = run(prohibited_practices=["c"], annex_iii=["5b"], art50=["50.1"])
    assert result.outcome == "prohibited"
    assert result.tier == "prohibited"
    assert result.prohibited_practices == ("c",)
    assert [s.key for s in result.steps] == ["scope", "prohibited"]
    assert step(result, "prohibited").refs == ("Art. 5(1)(c)",)
    assert "blocked" in step(result, "prohibited").finding


def test_out_of_scope_stops_before_everything_else() -> None:
    result = run(scope_exclusions=["military"], prohibited_practices=["a"])
    assert result.outcome == "out_of_scope"
    assert not result.in_scope
    assert result.tier == "minimal"  # the tier field has no "not covered" value; the outcome says it
    assert [s.key for s in result.steps] == ["scope"]
    assert step(result, "scope").refs == ("Art. 2(3)",)
    assert result.as_rationale()["in_scope"] is False


def test_open_source_exclusion_holds_only_for_a_minimal_risk_system() -> None:
    assert run(scope_exclusions=["open_source"]).outcome == "out_of_scope"
    with_duty = run(scope_exclusions=["open_source"], art50=["50.1"])
    assert with_duty.outcome == "limited"
    assert "does not apply" in with_duty.notes[0]
    assert run(scope_exclusions=["open_source"], annex_iii=["3a"]).outcome == "high"
    assert run(scope_exclusions=["open_source"], prohibited_practices=["e"]).outcome == "prohibited"


# --- Answer validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(("answers", "field"), [
    ({"annex_iii": ["9z"]}, "annex_iii"),
    ({"annex_iii": "5b"}, "annex_iii"),
    ({"profiling": "yes"}, "profiling"),
    ({"art50": ["50.9"]}, "art50"),
    ({"prohibited_practices": [1]}, "prohibited_practices"),
    ({"colour": "blue"}, "colour"),
])
def test_bad_answers_name_the_field(answers: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        Answers.from_mapping(answers)
    assert field in info.value.message_dict


def test_rationale_keeps_the_answers() -> None:
    result = run(annex_iii=["5c", "1a"], art50=["50.1"])
    rationale = result.as_rationale()
    assert rationale["answers"]["annex_iii"] == ["1a", "5c"]  # Annex order
    assert rationale["annex_iii_points"] == ["1a", "5c"]
    assert result.annex_iii_area == "1a"
    assert [s["key"] for s in rationale["steps"]] == ["scope", "prohibited", "annex_i", "annex_iii",
                                                      "exception_6_3", "art50"]


# --- Applicability of catalog rows -------------------------------------------------------------------


def row(tiers: list[str], duty: str = "both", conditions: dict[str, Any] | None = None, **dates: Any) -> Any:
    return SimpleNamespace(applies_to=tiers, duty_holder=duty, conditions=conditions or {},
                           applies_from_original=dates.get("original"), applies_from_amended=dates.get("amended"),
                           annex_i_from_original=dates.get("annex_i_original"),
                           annex_i_from_amended=dates.get("annex_i_amended"))


def test_requirement_applies_by_tier_and_role() -> None:
    deployer = SystemProfile(tier="high", role="deployer")
    provider = SystemProfile(tier="high", role="provider")
    both = SystemProfile(tier="high", role="both")
    assert requirement_applies(row(["high"], "deployer"), deployer)
    assert not requirement_applies(row(["high"], "deployer"), provider)
    assert not requirement_applies(row(["high"], "provider"), deployer)
    assert requirement_applies(row(["high"], "provider"), both) and requirement_applies(row(["high"], "deployer"), both)
    assert not requirement_applies(row(["limited"]), deployer)
    assert not requirement_applies(row([]), deployer)  # reference rows never become obligations
    assert not requirement_applies(row(["high"]), SystemProfile(tier="high", role="both", in_scope=False))


def test_fria_conditions_public_body_or_credit_and_insurance() -> None:
    fria = {"any": [{"public_body": True}, {"annex_iii": ["5b", "5c"]}], "not_annex_iii": ["2"]}
    assert condition_holds(fria, SystemProfile(tier="high", role="deployer", annex_iii_points=frozenset({"5b"})))
    assert condition_holds(fria, SystemProfile(tier="high", role="deployer", annex_iii_points=frozenset({"5c"})))
    assert not condition_holds(fria, SystemProfile(tier="high", role="deployer", annex_iii_points=frozenset({"4a"})))
    assert condition_holds(fria, SystemProfile(tier="high", role="deployer", annex_iii_points=frozenset({"4a"}),
                                               public_body=True))
    # Critical infrastructure (Annex III 2) is excluded even for public bodies.
    assert not condition_holds(fria, SystemProfile(tier="high", role="deployer", public_body=True,
                                                   annex_iii_points=frozenset({"2"})))


def test_area_prefix_and_point_conditions() -> None:
    profile = SystemProfile(tier="high", role="both", annex_iii_points=frozenset({"1a"}))
    assert condition_holds({"annex_iii": ["1"]}, profile)
    assert condition_holds({"annex_iii": ["1a"]}, profile)
    assert not condition_holds({"annex_iii": ["1b"]}, profile)
    assert condition_holds({"art50": ["50.1"]}, SystemProfile(tier="limited", role="provider",
                                                              art50=frozenset({"50.1"})))
    with pytest.raises(ValueError):
        condition_holds({"colour": "blue"}, profile)


def test_applicable_date_follows_the_basis_and_the_annex_i_route() -> None:
    dates = {"original": date(2030, 1, 1), "amended": date(2031, 1, 1),
             "annex_i_original": date(2032, 1, 1), "annex_i_amended": date(2033, 1, 1)}
    requirement = row(["high"], **dates)
    annex_iii = SystemProfile(tier="high", role="both", annex_iii_points=frozenset({"5b"}))
    annex_i = SystemProfile(tier="high", role="both", annex_i=True)
    assert applicable_date(requirement, annex_iii, "original") == date(2030, 1, 1)
    assert applicable_date(requirement, annex_iii, "amended") == date(2031, 1, 1)
    assert applicable_date(requirement, annex_i, "original") == date(2032, 1, 1)
    assert applicable_date(requirement, annex_i, "amended") == date(2033, 1, 1)


def test_conditions_are_described_in_words() -> None:
    text = describe_conditions({"any": [{"public_body": True}, {"annex_iii": ["5b", "5c"]}], "not_annex_iii": ["2"]})
    assert text == "(public body or Annex III 5b, 5c) and not Annex III 2"
    assert {"annex_iii", "any", "art50"} <= CONDITION_KEYS
