"""The Art. 86 explanation letter, built from the case (HTML and PDF).

Plain language for the person concerned: what the AI system did, why a person
looked at its output (routing reasons), what was decided and why (the reviewers'
own reasoning, never their names), and how to contest. Recording the letter (its
SHA-256 in the audit trail) is ``compliance.services.explanations.explanation_answer``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from django.template.loader import render_to_string
from django.utils import timezone

from compliance.models import ExplanationRequest
from reviews.models import Case, CaseStatus, DecisionOutcome, Resolution

# Routing reason codes (reviews.routing) in words a person without the system's manual understands.
REASON_TEXT: dict[str, str] = {
    "system_halted": "the system had been halted, so no output of it was used without a person checking it",
    "biometric_identification": "the system reported an identification, and the law requires two different "
                                "people to verify every such result",
    "labeling": "the system gave no answer of its own, so a person decided from the start",
    "confidence_below": "the system was not confident enough in its own answer",
    "always_review_label": "answers of this kind are always checked by a person",
    "high_stakes": "your case met a condition that the deployer treats as high-stakes, so a person must check it",
    "high_stakes_field_missing": "information needed to judge whether your case is high-stakes was missing, "
                                 "so a person checked it to be safe",
    "random_sample": "your case was picked at random for a quality check by a person",
}

RESOLUTION_TEXT: dict[str, str] = {
    Resolution.REVIEWED: "A person reviewed the system's output and took the decision.",
    Resolution.ADJUDICATED: "Reviewers disagreed, so a senior reviewer (an adjudicator) took the final decision.",
    Resolution.AUTO_ACCEPTED: "The system's output was accepted without a person reviewing it, because none of the "
                              "deployer's rules for human review applied to your case.",
    Resolution.SLA_ACCEPT_AI: "No reviewer could decide within the time limit, and the deployer's rule for that "
                              "situation was to accept the system's output.",
    Resolution.SLA_FAIL_CLOSED: "No reviewer could decide within the time limit, and the deployer's rule for that "
                                "situation was to refuse rather than accept the system's output.",
}


@dataclass(frozen=True)
class RenderedLetter:
    html: bytes
    pdf: bytes
    sha256: str
    pdf_sha256: str


def _verdicts(case: Case) -> list[dict[str, str]]:
    """The final round's verdicts, anonymised: what each person did and their own reasons."""
    rows = list(case.decisions.filter(round=case.review_round).exclude(outcome=DecisionOutcome.ESCALATE)
                .order_by("decided_at", "pk"))
    reviewers = sum(not decision.is_adjudication for decision in rows)
    verdicts = []
    for number, decision in enumerate(rows, start=1):
        if decision.outcome == DecisionOutcome.APPROVE:
            what = "agreed with the system's suggestion"
        else:
            what = f"did not follow the system's suggestion and decided “{decision.label}”"
        who = ("An adjudicator" if decision.is_adjudication
               else "The reviewer" if reviewers == 1 else f"Reviewer {number}")
        verdicts.append({"who": who, "what": what, "why": decision.rationale.strip()})
    return verdicts


def letter_context(request: ExplanationRequest, *, note: str, contest_url: str) -> dict[str, Any]:
    case = request.case
    system = case.system
    decided = case.status in (CaseStatus.DECIDED, CaseStatus.AUTO_ACCEPTED)
    return {
        "request": request,
        "case": case,
        "system": system,
        "reasons": [REASON_TEXT.get(code, code.replace("_", " ")) for code in (case.routing_reasons or [])],
        "routed": case.routed,
        "decided": decided,
        "resolution_text": RESOLUTION_TEXT.get(case.resolution or "", ""),
        "final_label": case.final_label,
        "ai_label": case.prediction_label,
        "ai_confidence": case.prediction_confidence,
        "followed_ai": decided and case.final_label is not None and case.final_label == case.prediction_label,
        "verdicts": _verdicts(case) if decided else [],
        "note": note.strip(),
        "contest_url": contest_url,
        "today": timezone.localdate(),
    }


def render_letter(context: dict[str, Any]) -> RenderedLetter:
    html = render_to_string("compliance/explanations/letter.html", context).encode("utf-8")
    # Imported here: WeasyPrint loads Pango at import, which pages that never print need not pay for.
    from weasyprint import HTML

    pdf = HTML(string=html.decode("utf-8")).write_pdf()
    return RenderedLetter(html=html, pdf=pdf, sha256=hashlib.sha256(html).hexdigest(),
                          pdf_sha256=hashlib.sha256(pdf).hexdigest())
