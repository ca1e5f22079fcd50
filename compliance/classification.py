"""EU AI Act risk classification and requirement applicability: pure decision logic, no database.

``classify(answers)`` walks the decision order of the regulation and returns the
outcome with a step-by-step rationale:

1. scope exclusions (Art. 2) - stop when the Act does not apply;
2. prohibited practices (Art. 5(1)) - stop: the system must not be used;
3. high risk: an Annex I product safety component (Art. 6(1)) or an Annex III use
   case (Art. 6(2)) unless the Art. 6(3) exception applies - never for a system that
   profiles natural persons;
4. Art. 50 transparency duties, which stack with high risk;
5. otherwise minimal risk (only Art. 4 AI literacy).

``requirement_applies`` decides whether one catalog row becomes an obligation of a
system, from the row's tiers, duty holder and conditions (all catalog data) and the
system's classified profile. Dates never appear here: they are catalog data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.core.exceptions import ValidationError

# --- The questions (keys are stable: they are stored in rationales) ---------------------------

SCOPE_EXCLUSIONS: dict[str, tuple[str, str]] = {
    "military": ("Art. 2(3)", "Used exclusively for military, defence or national security purposes."),
    "research": ("Art. 2(6)", "Developed and put into service solely for scientific research and development."),
    "pre_market": ("Art. 2(8)", "Research, testing or development before it is placed on the market or put into "
                                "service (real-world testing excluded)."),
    "personal": ("Art. 2(10)", "Used by a natural person in a purely personal, non-professional activity."),
    "open_source": ("Art. 2(12)", "Released under a free and open-source licence (this exclusion does not hold "
                                  "for prohibited, high-risk or Art. 50 systems)."),
}

PROHIBITED_PRACTICES: dict[str, tuple[str, str]] = {
    "a": ("Art. 5(1)(a)", "Uses subliminal, purposefully manipulative or deceptive techniques that distort "
                          "behaviour and cause, or are likely to cause, significant harm."),
    "b": ("Art. 5(1)(b)", "Exploits vulnerabilities due to age, disability or a social or economic situation "
                          "to distort behaviour harmfully."),
    "c": ("Art. 5(1)(c)", "Scores people on social behaviour or personal traits, leading to unjustified or "
                          "out-of-context detrimental treatment."),
    "d": ("Art. 5(1)(d)", "Predicts the risk of a person committing a crime solely from profiling or "
                          "personality traits (not: supporting a human assessment based on objective facts)."),
    "e": ("Art. 5(1)(e)", "Builds or expands facial-recognition databases by untargeted scraping of the "
                          "internet or CCTV footage."),
    "f": ("Art. 5(1)(f)", "Infers emotions at the workplace or in education (not for medical or safety "
                          "reasons)."),
    "g": ("Art. 5(1)(g)", "Categorises people from biometric data to infer race, political opinions, union "
                          "membership, religion, sex life or sexual orientation."),
    "h": ("Art. 5(1)(h)", "Real-time remote biometric identification in public spaces for law enforcement "
                          "(outside the narrow authorised exceptions)."),
}

ANNEX_III_AREAS: dict[str, str] = {
    "1": "Biometrics",
    "2": "Critical infrastructure",
    "3": "Education and vocational training",
    "4": "Employment and workers management",
    "5": "Essential private and public services",
    "6": "Law enforcement",
    "7": "Migration, asylum and border control",
    "8": "Administration of justice and democratic processes",
}

# Annex III points as "<area><letter>" (area 2 has no letters), with a short paraphrase.
ANNEX_III_POINTS: dict[str, str] = {
    "1a": "Remote biometric identification (not 1:1 verification)",
    "1b": "Biometric categorisation by sensitive or protected attributes",
    "1c": "Emotion recognition",
    "2": "Safety component of critical digital infrastructure, road traffic, or water, gas, heating or "
         "electricity supply",
    "3a": "Admission or assignment to education and training institutions",
    "3b": "Evaluating learning outcomes",
    "3c": "Assessing the appropriate level of education",
    "3d": "Monitoring and detecting prohibited behaviour during tests (proctoring)",
    "4a": "Recruitment and selection (ads, screening, evaluating candidates)",
    "4b": "Decisions on promotion or termination, task allocation, monitoring or evaluating performance",
    "5a": "Eligibility for public assistance benefits and services",
    "5b": "Creditworthiness or credit scoring of natural persons (not fraud detection)",
    "5c": "Risk assessment and pricing for life and health insurance",
    "5d": "Classifying emergency calls, dispatching emergency services, patient triage",
    "6a": "Assessing the risk of a person becoming a crime victim",
    "6b": "Polygraphs and similar tools in law enforcement",
    "6c": "Evaluating the reliability of evidence",
    "6d": "Assessing the risk of offending or re-offending",
    "6e": "Profiling in the detection, investigation or prosecution of crime",
    "7a": "Polygraphs and similar tools at borders",
    "7b": "Assessing security, irregular-migration or health risks of persons",
    "7c": "Examining asylum, visa and residence applications",
    "7d": "Detecting, recognising or identifying persons in migration contexts",
    "8a": "Assisting judicial authorities in researching, interpreting or applying the law",
    "8b": "Influencing the outcome of elections or voting behaviour",
}

EXCEPTION_6_3: dict[str, str] = {
    "a": "It only performs a narrow procedural task.",
    "b": "It only improves the result of a previously completed human activity.",
    "c": "It only detects decision-making patterns or deviations from them, without replacing or influencing "
         "the completed human assessment without proper human review.",
    "d": "It only performs a preparatory task to an assessment relevant to an Annex III use case.",
}

# Art. 50 duties: who bears each, and what triggers it.
ART50_DUTIES: dict[str, tuple[str, str]] = {
    "50.1": ("provider", "It interacts directly with natural persons (they must be told it is AI)."),
    "50.2": ("provider", "It generates synthetic audio, image, video or text (output must be marked "
                         "machine-readably)."),
    "50.3": ("deployer", "It is used for emotion recognition or biometric categorisation (exposed persons "
                         "must be informed)."),
    "50.4": ("deployer", "It produces deepfakes or AI-generated text published on matters of public interest "
                         "(must be disclosed unless under human editorial review)."),
}

OUTCOMES = ("out_of_scope", "prohibited", "high", "limited", "minimal")
TIERS = ("prohibited", "high", "limited", "minimal")


def _point_order(point: str) -> tuple[int, str]:
    return int(point[0]), point[1:]


@dataclass(frozen=True)
class Answers:
    """What the officer answered, question by question (all keys of the tables above)."""

    scope_exclusions: frozenset[str] = frozenset()
    prohibited_practices: frozenset[str] = frozenset()
    annex_i_product: bool = False
    annex_iii: frozenset[str] = frozenset()
    exception_6_3: frozenset[str] = frozenset()
    profiling: bool = False
    art50: frozenset[str] = frozenset()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Answers:
        """Validate raw answers (API body, wizard session); errors name the field."""
        errors: dict[str, list[str]] = {}

        def choices(name: str, allowed: Iterable[str]) -> frozenset[str]:
            value = data.get(name, [])
            allowed = list(allowed)
            if value is None:
                return frozenset()
            if not isinstance(value, list | tuple | set | frozenset) or not all(isinstance(v, str) for v in value):
                errors[name] = ["must be a list of strings"]
                return frozenset()
            unknown = sorted(set(value) - set(allowed))
            if unknown:
                errors[name] = [f"unknown value(s): {', '.join(unknown)}; allowed: {', '.join(allowed)}"]
                return frozenset()
            return frozenset(value)

        def flag(name: str) -> bool:
            value = data.get(name, False)
            if not isinstance(value, bool):
                errors[name] = ["must be true or false"]
                return False
            return value

        unknown_keys = sorted(set(data) - {f.name for f in cls.__dataclass_fields__.values()} - {"reason"})
        for key in unknown_keys:
            errors[str(key)] = ["not a classification question"]
        answers = cls(
            scope_exclusions=choices("scope_exclusions", SCOPE_EXCLUSIONS),
            prohibited_practices=choices("prohibited_practices", PROHIBITED_PRACTICES),
            annex_i_product=flag("annex_i_product"),
            annex_iii=choices("annex_iii", ANNEX_III_POINTS),
            exception_6_3=choices("exception_6_3", EXCEPTION_6_3),
            profiling=flag("profiling"),
            art50=choices("art50", ART50_DUTIES),
        )
        if errors:
            raise ValidationError(errors)
        return answers

    def as_dict(self) -> dict[str, Any]:
        return {
            "scope_exclusions": sorted(self.scope_exclusions),
            "prohibited_practices": sorted(self.prohibited_practices),
            "annex_i_product": self.annex_i_product,
            "annex_iii": sorted(self.annex_iii, key=_point_order),
            "exception_6_3": sorted(self.exception_6_3),
            "profiling": self.profiling,
            "art50": sorted(self.art50),
        }


@dataclass(frozen=True)
class Step:
    """One step of the decision, as the rationale shows it."""

    key: str
    title: str
    finding: str
    refs: tuple[str, ...] = ()
    decisive: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "finding": self.finding, "refs": list(self.refs),
                "decisive": self.decisive}


@dataclass(frozen=True)
class Classification:
    """The outcome with everything needed to explain it and to derive obligations."""

    outcome: str
    answers: Answers
    steps: tuple[Step, ...]
    annex_iii_points: tuple[str, ...] = ()
    annex_i: bool = False
    exception_6_3_applied: bool = False
    profiling_override: bool = False
    art50_duties: tuple[str, ...] = ()
    prohibited_practices: tuple[str, ...] = ()
    scope_exclusions: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def tier(self) -> str:
        """The tier stored on the system. Out of scope carries no duties; it is kept as minimal
        with ``outcome`` = out_of_scope (the tier field has no value for "not covered")."""
        return "minimal" if self.outcome == "out_of_scope" else self.outcome

    @property
    def in_scope(self) -> bool:
        return self.outcome != "out_of_scope"

    @property
    def annex_iii_area(self) -> str:
        """The primary Annex III point (the first in Annex order), or blank."""
        return self.annex_iii_points[0] if self.annex_iii_points else ""

    @property
    def summary(self) -> str:
        text = {
            "out_of_scope": "Outside the scope of the AI Act",
            "prohibited": "Prohibited practice (Art. 5): the system must not be used",
            "high": "High risk",
            "limited": "Limited risk (Art. 50 transparency duties)",
            "minimal": "Minimal risk (Art. 4 AI literacy only)",
        }[self.outcome]
        if self.outcome == "high":
            grounds = []
            if self.annex_i:
                grounds.append("Art. 6(1) Annex I product")
            if self.annex_iii_points:
                grounds.append("Annex III " + ", ".join(_point_label(p) for p in self.annex_iii_points))
            text += " (" + "; ".join(grounds) + ")"
            if self.art50_duties:
                text += " with Art. 50 duties " + ", ".join(self.art50_duties)
        elif self.outcome in ("limited", "minimal") and self.exception_6_3_applied:
            text += "; Annex III listed, not high risk under the Art. 6(3) exception"
        return text

    def as_rationale(self) -> dict[str, Any]:
        """The JSON stored on the system (``classification_rationale``)."""
        return {
            "outcome": self.outcome,
            "tier": self.tier,
            "summary": self.summary,
            "in_scope": self.in_scope,
            "scope_exclusions": list(self.scope_exclusions),
            "prohibited_practices": list(self.prohibited_practices),
            "annex_i": self.annex_i,
            "annex_iii_points": list(self.annex_iii_points),
            "exception_6_3": {"claimed": sorted(self.answers.exception_6_3), "applied": self.exception_6_3_applied,
                              "profiling_override": self.profiling_override},
            "art50_duties": list(self.art50_duties),
            "steps": [step.as_dict() for step in self.steps],
            "notes": list(self.notes),
            "answers": self.answers.as_dict(),
        }


def _point_label(point: str) -> str:
    return f"{point[0]}({point[1:]})" if len(point) > 1 else point


def classify(answers: Answers) -> Classification:
    """Classify a system from its answers, in the regulation's decision order."""
    steps: list[Step] = []
    hard_exclusions = sorted(answers.scope_exclusions - {"open_source"})
    if hard_exclusions:
        steps.append(Step(
            "scope", "Scope (Art. 2)",
            "Excluded from the AI Act: " + " ".join(SCOPE_EXCLUSIONS[k][1] for k in hard_exclusions),
            tuple(SCOPE_EXCLUSIONS[k][0] for k in hard_exclusions), decisive=True,
        ))
        return Classification("out_of_scope", answers, tuple(steps),
                              scope_exclusions=tuple(sorted(answers.scope_exclusions)))
    open_source = "open_source" in answers.scope_exclusions
    steps.append(Step(
        "scope", "Scope (Art. 2)",
        "No exclusion applies." if not open_source
        else "Free and open-source: excluded only if it turns out neither prohibited, high-risk nor subject "
             "to Art. 50 (checked below).",
        ("Art. 2(12)",) if open_source else (),
    ))

    practices = sorted(answers.prohibited_practices)
    if practices:
        steps.append(Step(
            "prohibited", "Prohibited practices (Art. 5)",
            "Prohibited: " + " ".join(PROHIBITED_PRACTICES[k][1] for k in practices)
            + " The system must not be placed on the market, put into service or used; it is blocked.",
            tuple(PROHIBITED_PRACTICES[k][0] for k in practices), decisive=True,
        ))
        notes: tuple[str, ...] = (
            ("The open-source exclusion does not cover prohibited practices.",) if open_source else ()
        )
        return Classification("prohibited", answers, tuple(steps), prohibited_practices=tuple(practices),
                               scope_exclusions=tuple(sorted(answers.scope_exclusions)), notes=notes)
    steps.append(Step("prohibited", "Prohibited practices (Art. 5)", "No prohibited practice.", ("Art. 5(1)",)))

    points = tuple(sorted(answers.annex_iii, key=_point_order))
    high = False
    exception_applied = False
    profiling_override = False
    if answers.annex_i_product:
        high = True
        steps.append(Step(
            "annex_i", "Annex I products (Art. 6(1))",
            "Safety component of (or itself) a product under Annex I law that needs third-party conformity "
            "assessment: high risk.", ("Art. 6(1)", "Annex I"), decisive=True,
        ))
    else:
        steps.append(Step("annex_i", "Annex I products (Art. 6(1))", "Not an Annex I product safety component.",
                          ("Art. 6(1)",)))
    if points:
        listed = "; ".join(f"{_point_label(p)} {ANNEX_III_POINTS[p]}" for p in points)
        steps.append(Step("annex_iii", "Annex III use cases (Art. 6(2))", f"Listed in Annex III: {listed}.",
                          tuple(f"Annex III {_point_label(p)}" for p in points)))
        claimed = sorted(answers.exception_6_3)
        if claimed and answers.profiling:
            profiling_override = True
            high = True
            steps.append(Step(
                "exception_6_3", "Art. 6(3) exception",
                "An exception was claimed (" + ", ".join(f"6(3)({k})" for k in claimed) + "), but the system "
                "profiles natural persons, so it is always high risk.", ("Art. 6(3)",), decisive=True,
            ))
        elif claimed:
            exception_applied = True
            steps.append(Step(
                "exception_6_3", "Art. 6(3) exception",
                "Not high risk: no significant risk of harm, because " + " ".join(EXCEPTION_6_3[k] for k in claimed)
                + " The provider documents this assessment (Art. 6(4)) and registers the system (Art. 49(2))."
                + (" The Annex I ground above still makes it high risk." if answers.annex_i_product else ""),
                ("Art. 6(3)", "Art. 6(4)", "Art. 49(2)"), decisive=not answers.annex_i_product,
            ))
        else:
            high = True
            steps.append(Step(
                "exception_6_3", "Art. 6(3) exception",
                "No exception condition applies: high risk." + (
                    " It also profiles natural persons, which rules the exception out in any case."
                    if answers.profiling else ""),
                ("Art. 6(2)", "Art. 6(3)"), decisive=True,
            ))
    else:
        steps.append(Step("annex_iii", "Annex III use cases (Art. 6(2))", "No Annex III use case.", ("Annex III",)))

    duties = tuple(sorted(answers.art50))
    if duties:
        steps.append(Step(
            "art50", "Transparency duties (Art. 50)",
            "Applies: " + " ".join(f"{d} ({ART50_DUTIES[d][0]}): {ART50_DUTIES[d][1]}" for d in duties)
            + (" These stack with the high-risk duties." if high else ""),
            tuple(f"Art. {d[:2]}({d[3:]})" for d in duties), decisive=not high,
        ))
    else:
        steps.append(Step("art50", "Transparency duties (Art. 50)", "No Art. 50 duty.", ("Art. 50",)))

    outcome = "high" if high else "limited" if duties else "minimal"
    notes = ()
    if open_source:
        if outcome == "minimal":
            steps.append(Step("scope_open_source", "Open-source exclusion (Art. 2(12))",
                              "Neither prohibited, high-risk nor subject to Art. 50: the open-source exclusion "
                              "applies, the AI Act does not.", ("Art. 2(12)",), decisive=True))
            outcome = "out_of_scope"
        else:
            notes = ("The open-source exclusion does not apply to a high-risk or Art. 50 system.",)
    if outcome == "minimal":
        steps.append(Step("minimal", "Minimal risk", "No further duty beyond AI literacy of staff (Art. 4).",
                          ("Art. 4",), decisive=True))
    return Classification(
        outcome, answers, tuple(steps), annex_iii_points=points, annex_i=answers.annex_i_product,
        exception_6_3_applied=exception_applied, profiling_override=profiling_override, art50_duties=duties,
        scope_exclusions=tuple(sorted(answers.scope_exclusions)), notes=notes,
    )


# --- Which catalog rows apply to a system ----------------------------------------------------------


@dataclass(frozen=True)
class SystemProfile:
    """What obligations depend on: the tier and route, our role, public-body status, Art. 50 / Art. 5 findings."""

    tier: str
    role: str
    annex_iii_points: frozenset[str] = frozenset()
    annex_i: bool = False
    public_body: bool = False
    exception_6_3: bool = False
    art50: frozenset[str] = frozenset()
    art5: frozenset[str] = frozenset()
    in_scope: bool = True

    @classmethod
    def from_system(cls, system: Any) -> SystemProfile:
        """From an ``AISystem``: the stored classification where there is one, the declared tier otherwise."""
        rationale = system.classification_rationale or {}
        classified = bool(system.classified_tier and rationale)
        points = set(rationale.get("annex_iii_points") or []) if classified else set()
        if system.annex_iii_area:
            points.add(system.annex_iii_area.lower())
        return cls(
            tier=system.risk_tier or "",
            role=system.role,
            annex_iii_points=frozenset(points),
            annex_i=bool(rationale.get("annex_i")) if classified else False,
            public_body=bool(system.is_public_body),
            exception_6_3=bool((rationale.get("exception_6_3") or {}).get("applied")) if classified else False,
            art50=frozenset(rationale.get("art50_duties") or []) if classified else frozenset(),
            art5=frozenset(rationale.get("prohibited_practices") or []) if classified else frozenset(),
            in_scope=rationale.get("in_scope", True) if classified else True,
        )


CONDITION_KEYS = frozenset({"annex_iii", "not_annex_iii", "public_body", "annex_i", "exception_6_3", "art50",
                            "art5", "any"})


def _matches_points(points: frozenset[str], prefixes: Iterable[str]) -> bool:
    """A prefix "5" names the whole area, "5b" one point."""
    return any(point.startswith(prefix) for point in points for prefix in prefixes)


def condition_holds(conditions: Mapping[str, Any], profile: SystemProfile) -> bool:
    """All of a row's conditions hold for the profile (``any`` holds when one of its parts does)."""
    for key, value in conditions.items():
        if key == "annex_iii":
            ok = _matches_points(profile.annex_iii_points, value)
        elif key == "not_annex_iii":
            ok = not _matches_points(profile.annex_iii_points, value)
        elif key == "public_body":
            ok = profile.public_body == value
        elif key == "annex_i":
            ok = profile.annex_i == value
        elif key == "exception_6_3":
            ok = profile.exception_6_3 == value
        elif key == "art50":
            ok = bool(profile.art50 & set(value))
        elif key == "art5":
            ok = bool(profile.art5 & set(value))
        elif key == "any":
            ok = any(condition_holds(part, profile) for part in value)
        else:
            raise ValueError(f"unknown catalog condition {key!r}")
        if not ok:
            return False
    return True


def requirement_applies(requirement: Any, profile: SystemProfile) -> bool:
    """Whether a catalog row (``applies_to``, ``duty_holder``, ``conditions``) is an obligation of the system."""
    if not profile.in_scope or profile.tier not in (requirement.applies_to or []):
        return False
    duty = requirement.duty_holder
    if duty == "provider" and profile.role not in ("provider", "both"):
        return False
    if duty == "deployer" and profile.role not in ("deployer", "both"):
        return False
    return condition_holds(requirement.conditions or {}, profile)


def applicable_date(requirement: Any, profile: SystemProfile, basis: str) -> date | None:
    """The date a requirement applies to this system from, under the catalog's date basis.

    The Art. 6(1) product route has its own dates: they count when the system is high
    risk through Annex I only (an Annex III listing brings the earlier regime).
    """
    use_product_route = profile.annex_i and not profile.annex_iii_points and requirement.annex_i_from_original
    if use_product_route:
        original, amended = requirement.annex_i_from_original, requirement.annex_i_from_amended
    else:
        original, amended = requirement.applies_from_original, requirement.applies_from_amended
    if basis == "amended":
        return amended or original
    return original


def describe_conditions(conditions: Mapping[str, Any]) -> str:
    """A catalog row's conditions in words, for the pages."""
    parts = []
    for key, value in conditions.items():
        if key == "annex_iii":
            parts.append("Annex III " + ", ".join(value))
        elif key == "not_annex_iii":
            parts.append("not Annex III " + ", ".join(value))
        elif key == "public_body":
            parts.append("public body" if value else "not a public body")
        elif key == "annex_i":
            parts.append("Annex I product" if value else "not an Annex I product")
        elif key == "exception_6_3":
            parts.append("Art. 6(3) exception applied" if value else "no Art. 6(3) exception")
        elif key == "art50":
            parts.append("Art. 50 duty " + " or ".join(value))
        elif key == "art5":
            parts.append("prohibited practice " + ", ".join(f"5(1)({v})" for v in value))
        elif key == "any":
            parts.append("(" + " or ".join(describe_conditions(part) for part in value) + ")")
        else:
            parts.append(f"{key}={value}")
    return " and ".join(parts)
