"""The governance half of ``manage.py demo_data``: what an officer finds already under way.

``reviews`` (a lower floor) owns the demo command and sends ``demo_data_loaded``
once its people, systems and traffic exist; this module, on the top floor, may use
every app's services and fills in: gold items and a calibration session, training
records (one reviewer's required training expired), the credit-scoring system
classified with its obligations and a piece of evidence, a FRIA, an incident, and a
finished bias audit over the month (which finds the planted gender disparity).
Everything goes through the services, so each step has its audit event. Idempotent:
it runs only when no gold item exists yet.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth.models import User
from django.dispatch import receiver
from django.utils import timezone

from compliance.models import Obligation
from compliance.services.classification import system_classify
from compliance.services.fria import FRIA_FIELDS, fria_save
from compliance.services.obligations import NewEvidence, obligation_update
from fairness.services import bias_audit_request, bias_audit_run_chunk, bias_audit_start
from incidents.services import incident_create
from quality.models import GoldItem
from quality.services.calibration import calibration_session_create
from quality.services.gold import gold_item_create
from reviews.models import AISystem, InterventionPoint, ReviewerProfile
from reviews.services.people import training_record_add
from reviews.signals import demo_data_loaded

GOLD = [
    ({"amount": 2500, "monthly_income": 3100, "employment_years": 6, "purpose": "car",
      "text": "Application for 2500 EUR over 24 months."}, "reject", 0.62, "approve"),
    ({"amount": 42000, "monthly_income": 900, "employment_years": 0, "purpose": "business",
      "text": "Application for 42000 EUR over 60 months."}, "approve", 0.7, "reject"),
    ({"amount": 12000, "monthly_income": 4200, "employment_years": 11, "purpose": "renovation",
      "text": "Application for 12000 EUR over 36 months."}, "reject", 0.66, "approve"),
]


@receiver(demo_data_loaded)
def add_governance_demo(sender: Any, *, admin: User, **kwargs: Any) -> list[str]:
    """Create the governance demo once; returns one line per thing created (for the printed summary)."""
    if GoldItem.objects.exists():
        return []
    officer = User.objects.get(username="officer")
    credit = AISystem.objects.get(slug="credit-scoring")
    loan = InterventionPoint.objects.get(system=credit, slug="loan-review")
    today = timezone.localdate()
    done: list[str] = []

    items = [
        gold_item_create(actor=officer, point=loan, input=data, gold_label=gold, note="Demo gold item.",
                         prediction={"label": ai, "confidence": confidence, "model_version": "v3.2"})
        for data, ai, confidence, gold in GOLD
    ]
    done.append(f"{len(items)} gold items (credit scoring)")
    reviewers = list(User.objects.filter(username__in=["rev2", "rev3"]).order_by("username"))
    calibration_session_create(actor=officer, name="Credit calibration, December", items=items[:2],
                               reviewers=reviewers, description="Two hard loan cases, answered by rev2 and rev3.")
    done.append("a calibration session (rev2, rev3)")

    for username in ("rev1", "rev2", "rev3", "rev4", "rev5"):
        training_record_add(actor=officer, profile=ReviewerProfile.objects.get(user__username=username),
                            title="AI literacy (Art. 4)", completed_at=today - dt.timedelta(days=60),
                            expires_at=today + dt.timedelta(days=305))
    training_record_add(actor=officer, profile=ReviewerProfile.objects.get(user__username="rev6"),
                        title="AI literacy (Art. 4)", completed_at=today - dt.timedelta(days=400),
                        expires_at=today - dt.timedelta(days=35))
    done.append("training records (rev6's AI literacy training expired)")

    system_classify(actor=officer, system=credit, answers={"annex_iii": ["5b"], "profiling": True},
                    reason="Demo: creditworthiness of natural persons (Annex III 5(b)).")
    obligation = Obligation.objects.filter(system=credit).order_by("id").first()
    if obligation is not None:
        obligation_update(
            actor=officer, obligation=obligation, status="met", owner=officer,
            add_evidence=[NewEvidence(kind="link", title="Human oversight procedure v2",
                                      url="https://intranet.example.org/credit/oversight-procedure-v2")],
            reason="Demo: procedure approved by the risk committee.",
        )
    done.append("credit scoring classified high-risk, obligations generated, one met with evidence")

    fria_save(actor=officer, system=credit, first_use_on=today - dt.timedelta(days=45),
              contents={name: f"Demo assessment, {name.replace('_', ' ')}: see the credit risk file."
                        for name in FRIA_FIELDS}, change_summary="First version.")
    done.append("a FRIA for credit scoring")

    incident_create(actor=officer, system=credit, kind="other", aware_at=timezone.now() - dt.timedelta(days=3),
                    title="Scoring outage", description="The scoring model answered with timeouts for 40 minutes; "
                    "applications were queued for human review.")
    done.append("an incident")

    now = timezone.now()
    audit = bias_audit_request(actor=officer, system=credit, attribute="gender",
                               period_from=now - dt.timedelta(days=31), period_to=now)
    # Run it here, to the end, so the demo shows a finished audit (the worker would find nothing left).
    for index in bias_audit_start(audit_id=audit.pk):
        bias_audit_run_chunk(audit_id=audit.pk, index=index)
    audit.refresh_from_db()
    done.append(f"a bias audit of credit scoring by gender ({audit.status}, flagged: {audit.flagged})")
    return done
