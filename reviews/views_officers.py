"""Compliance officers' side of "escalations always resolve": open alerts, adjudicate or assign a case.

Officers (and admins) see every case; a case routed to them (an open alert) can
be adjudicated here, and any open case assigned to a named reviewer.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views import View

from hitl_portal.actors import request_user
from hitl_portal.errors import Conflict
from hitl_portal.permissions import RoleRequiredMixin
from hitl_portal.roles import COMPLIANCE_OFFICER
from reviews.forms import AssignForm, CommentForm, OfficerDecisionForm
from reviews.models import OPEN_STATUSES, Case, CaseStatus
from reviews.selectors.escalations import adjudication_context, eligible_reviewers, open_alerts, open_alerts_of
from reviews.selectors.own_work import comment_rows, comments_visible_to
from reviews.selectors.visibility import cases_visible_to
from reviews.services.escalations import ALERT_TEXT, case_assign, case_officer_adjudicate, officer_may_adjudicate
from reviews.views import _display_tree


class _OfficerPage(RoleRequiredMixin):
    allowed_roles = (COMPLIANCE_OFFICER,)


class EscalationsView(_OfficerPage, View):
    """Open alerts: cases nobody eligible can take, or waiting past their SLA."""

    def get(self, request: HttpRequest) -> HttpResponse:
        alerts = list(open_alerts(limit=500))
        return render(request, "reviews/escalations.html", {"alerts": alerts, "alert_text": ALERT_TEXT})


class OfficerCaseView(_OfficerPage, View):
    """One case for an officer: context, alerts, adjudicate (when routed to officers), assign, comment."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        case = self._case(request, pk)
        if case is None:
            return render(request, "404.html", status=404)
        return self._render(request, case)

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        case = self._case(request, pk)
        if case is None:
            return render(request, "404.html", status=404)
        form = OfficerDecisionForm(request.POST, labels=list(case.system.labels),
                                   has_ai_label=case.prediction_label is not None)
        if not form.is_valid():
            return self._render(request, case, decide_form=form, status=400)
        try:
            case_officer_adjudicate(officer=request_user(request), case=case, outcome=form.cleaned_data["outcome"],
                                    label=form.cleaned_data.get("label") or None,
                                    rationale=form.cleaned_data.get("rationale") or "")
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
            return self._render(request, case, decide_form=form, status=400)
        except Conflict as exc:
            messages.error(request, f"Not decided: {exc.detail}")
            return redirect("reviews:officer_case", pk=pk)
        messages.success(request, f"Case #{pk} adjudicated: final label {case.final_label or '—'}.")
        return redirect("reviews:escalations")

    @staticmethod
    def _case(request: HttpRequest, pk: int) -> Case | None:
        return cases_visible_to(request.user).select_related("system", "intervention_point", "claimed_by").filter(
            pk=pk
        ).first()

    def _render(self, request: HttpRequest, case: Case, *, decide_form: OfficerDecisionForm | None = None,
                assign_form: AssignForm | None = None, status: int = 200) -> HttpResponse:
        is_open = case.status in OPEN_STATUSES
        escalated = case.status == CaseStatus.ESCALATED
        candidates = [p.user.get_username() for p in eligible_reviewers(case, adjudicator=escalated)] if is_open else []
        context: dict[str, Any] = {
            "case": case,
            "input_tree": _display_tree(case.input),
            "is_open": is_open,
            "alerts": open_alerts_of(case),
            "alert_text": ALERT_TEXT,
            "adjudication": adjudication_context(case),
            "may_adjudicate": is_open and officer_may_adjudicate(case, request_user(request)),
            "decide_form": decide_form or OfficerDecisionForm(labels=list(case.system.labels),
                                                              has_ai_label=case.prediction_label is not None),
            "assign_form": assign_form or AssignForm(reviewers=candidates),
            "candidates": candidates,
            "comments": comment_rows(comments_visible_to(request_user(request), case)),
            "comment_form": CommentForm(),
        }
        return render(request, "reviews/officer_case.html", context, status=status)


class AssignView(_OfficerPage, View):
    """POST: hand an open case to a named reviewer, with a reason (audited ``case.reassigned``)."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        case = OfficerCaseView._case(request, pk)
        if case is None:
            return render(request, "404.html", status=404)
        username = str(request.POST.get("reviewer") or "")
        reviewer = User.objects.filter(username=username).first()
        try:
            if reviewer is None:
                raise ValidationError({"reviewer": ["Choose a reviewer."]})
            case_assign(
                actor=request_user(request), case=case, reviewer=reviewer, reason=str(request.POST.get("reason") or "")
            )
        except ValidationError as exc:
            messages.error(request, "Not assigned: " + " ".join(m for ms in exc.message_dict.values() for m in ms))
            return redirect("reviews:officer_case", pk=pk)
        except Conflict as exc:
            messages.error(request, f"Not assigned: {exc.detail}")
            return redirect("reviews:officer_case", pk=pk)
        messages.success(request, f"Case #{pk} assigned to {username}: it is in their hands now.")
        return redirect("reviews:escalations")
