"""Art. 86 pages: the affected person's public page (request, contest, letter) and the officers' pages.

The public page needs no login and no CAPTCHA; it resists abuse instead by a
per-address budget of attempts, a per-reference budget of failed attempts (kept
in the cache, so an unknown reference is limited exactly like a known one), a
constant-time comparison of the code's keyed hash, and one answer for an unknown
reference and a wrong code.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views import View

from compliance import forms_explanations as f
from compliance.explanation_letter import letter_context
from compliance.models import ExplanationRequest, ExplanationStatus
from compliance.selectors.explanations import (
    OPEN_STATUSES,
    active_officers,
    explanation_get,
    explanation_kpis,
    explanation_requests,
    latest_request_for_case,
    reference_case,
)
from compliance.services.explanations import (
    contest_url,
    explanation_answer,
    explanation_contest,
    explanation_request_submit,
    explanation_update,
)
from hitl_portal.errors import Conflict
from hitl_portal.permissions import PUBLIC, RoleRequiredMixin
from hitl_portal.roles import COMPLIANCE_OFFICER
from reviews.models import Case

User = get_user_model()

# Per client address: every POST counts (a person needs a few; a script needs thousands).
IP_ATTEMPTS = 20
IP_WINDOW_SECONDS = 15 * 60
# Per reference (system + case reference, known or not): failed codes only.
REFERENCE_FAILURES = 5
REFERENCE_WINDOW_SECONDS = 60 * 60
NOT_MATCHED = ("We could not find a case with this reference and verification code. Check them against the "
               "letter or message you received.")
TOO_MANY = "Too many attempts. Please try again later."


def client_address(request: HttpRequest) -> str:
    """The client's address, trusting as many X-Forwarded-For hops as the API's throttling does."""
    proxies = int(str(settings.REST_FRAMEWORK.get("NUM_PROXIES") or 0))
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-min(proxies, len(hops))]
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _bump(key: str, window: int) -> int:
    cache.add(key, 0, timeout=window)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window)
        return 1


def _reference_key(system: str, external_id: str) -> str:
    digest = hashlib.sha256(f"{system.strip()}\x1f{external_id.strip()}".encode()).hexdigest()
    return f"art86:ref:{digest}"


class PublicPage(RoleRequiredMixin, View):
    """A page for anyone (no login): the person concerned by a decision."""

    roles = {"GET": {PUBLIC}, "POST": {PUBLIC}}
    template_name = ""
    tab = ""
    form_class: type[f.ReferenceForm] = f.ReferenceForm

    def page(self, request: HttpRequest, form: Any, *, status: int = 200, **extra: Any) -> HttpResponse:
        return render(request, self.template_name, {"form": form, "tab": self.tab, **extra}, status=status)

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.page(request, self.form_class())

    def verified_case(self, request: HttpRequest, form: Any) -> tuple[Case | None, HttpResponse | None]:
        """The case named by a valid form's reference, or the response that refuses it."""
        data = form.cleaned_data
        ref_key = _reference_key(data["system"], data["external_id"])
        if (cache.get(ref_key) or 0) >= REFERENCE_FAILURES:
            return None, self.page(request, form, status=429, error=TOO_MANY)
        case = reference_case(system_slug=data["system"], external_id=data["external_id"], code=data["code"])
        if case is None:
            _bump(ref_key, REFERENCE_WINDOW_SECONDS)
            return None, self.page(request, form, status=400, error=NOT_MATCHED)
        return case, None

    def post(self, request: HttpRequest) -> HttpResponse:
        form = self.form_class(request.POST)
        if _bump(f"art86:ip:{client_address(request)}", IP_WINDOW_SECONDS) > IP_ATTEMPTS:
            return self.page(request, form, status=429, error=TOO_MANY)
        if not form.is_valid():
            return self.page(request, form, status=400)
        case, refusal = self.verified_case(request, form)
        if refusal is not None:
            return refusal
        assert case is not None
        return self.act(request, form, case)

    def act(self, request: HttpRequest, form: Any, case: Case) -> HttpResponse:
        raise NotImplementedError


class PublicRequestView(PublicPage):
    """Ask for an explanation of a decision taken with the help of an AI system (Art. 86)."""

    template_name = "compliance/explanations/public_request.html"
    tab = "request"
    form_class = f.ExplanationRequestForm

    def act(self, request: HttpRequest, form: Any, case: Case) -> HttpResponse:
        data = form.cleaned_data
        registered = explanation_request_submit(case=case, message=data["message"], contact=data["contact"])
        return render(request, "compliance/explanations/public_done.html",
                      {"registered": registered, "kind": "request"})


class PublicContestView(PublicPage):
    """Contest the decision after its explanation: the case is looked at again by someone else."""

    template_name = "compliance/explanations/public_contest.html"
    tab = "contest"
    form_class = f.ContestForm

    def act(self, request: HttpRequest, form: Any, case: Case) -> HttpResponse:
        latest = latest_request_for_case(case)
        if latest is None or latest.status != ExplanationStatus.ANSWERED:
            return self.page(request, form, status=409, error=(
                "A decision can be contested once its explanation was sent to you. If you have not asked for "
                "one yet, please do so first."))
        try:
            contested = explanation_contest(actor=None, request=latest, reason=form.cleaned_data["reason"])
        except Conflict as exc:
            return self.page(request, form, status=409, error=str(exc))
        return render(request, "compliance/explanations/public_done.html",
                      {"registered": contested, "kind": "contest"})


class PublicLetterView(PublicPage):
    """The person downloads their explanation letter (PDF) with the same reference and code."""

    template_name = "compliance/explanations/public_letter.html"
    tab = "letter"

    def act(self, request: HttpRequest, form: Any, case: Case) -> HttpResponse:
        answered = (ExplanationRequest.objects.filter(case=case, answered_at__isnull=False)
                    .order_by("-answered_at").first())
        if answered is None:
            return self.page(request, form, status=404,
                             error="No explanation letter has been sent for this case yet.")
        response = HttpResponse(bytes(answered.letter_pdf), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="explanation-{answered.pk}.pdf"'
        response["Cache-Control"] = "no-store"
        return response


# --- The officers' pages ----------------------------------------------------------------


class OfficerPage(RoleRequiredMixin, View):
    roles = {"GET": {COMPLIANCE_OFFICER}, "POST": {COMPLIANCE_OFFICER}}

    def found(self, pk: int) -> ExplanationRequest:
        request = explanation_get(pk)
        if request is None:
            raise Http404("No such explanation request.")
        return request


class ExplanationListView(OfficerPage):
    roles = {"GET": {COMPLIANCE_OFFICER}}

    def get(self, request: HttpRequest) -> HttpResponse:
        wanted = request.GET.get("status") or ""
        if wanted not in ExplanationStatus.values:
            wanted = ""
        rows = list(explanation_requests(status=wanted or None)[:500])
        return render(request, "compliance/explanations/list.html", {
            "rows": rows, "kpis": explanation_kpis(), "statuses": ExplanationStatus.choices, "wanted": wanted,
            "deadline_days": settings.HITL_EXPLANATION_DEADLINE_DAYS, "open_statuses": OPEN_STATUSES,
            "now": timezone.now(),
        })


class ExplanationDetailView(OfficerPage):
    roles = {"GET": {COMPLIANCE_OFFICER}}

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        found = self.found(pk)
        note = request.GET.get("note", found.officer_note)
        letter = letter_context(found, note=note, contest_url=contest_url(request.build_absolute_uri("/")))
        return render(request, "compliance/explanations/detail.html", {
            "item": found, "letter": letter, "answer_form": f.AnswerForm(initial={"note": note}),
            "contest_form": f.OfficerContestForm(), "officers": active_officers().order_by("username"),
            "is_open": found.status in OPEN_STATUSES, "decisions": found.case.decisions.order_by("round", "pk"),
        })


class ExplanationAnswerView(OfficerPage):
    roles = {"POST": {COMPLIANCE_OFFICER}}

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        found = self.found(pk)
        form = f.AnswerForm(request.POST)
        if not form.is_valid():
            messages.error(request, "; ".join(str(e) for errs in form.errors.values() for e in errs))
            return redirect("compliance:explanation_detail", pk=pk)
        try:
            letter = explanation_answer(actor=request.user, request=found, note=form.cleaned_data["note"],
                                        base_url=request.build_absolute_uri("/"))
        except (Conflict, ValidationError) as exc:
            messages.error(request, _message(exc))
        else:
            messages.success(request, f"Letter sent and recorded (SHA-256 {letter.pdf_sha256[:16]}…).")
        return redirect("compliance:explanation_detail", pk=pk)


class ExplanationContestView(OfficerPage):
    roles = {"POST": {COMPLIANCE_OFFICER}}

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        found = self.found(pk)
        form = f.OfficerContestForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Give the person's grounds for the contest.")
            return redirect("compliance:explanation_detail", pk=pk)
        try:
            explanation_contest(actor=request.user, request=found, reason=form.cleaned_data["reason"],
                                by_officer=True)
        except (Conflict, ValidationError) as exc:
            messages.error(request, _message(exc))
        else:
            messages.success(request, "Contest recorded: the case is reopened for a reviewer who did not decide it.")
        return redirect("compliance:explanation_detail", pk=pk)


class ExplanationAssignView(OfficerPage):
    roles = {"POST": {COMPLIANCE_OFFICER}}

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        found = self.found(pk)
        username = request.POST.get("assignee", "")
        assignee = User.objects.filter(username=username).first() if username else None
        try:
            explanation_update(actor=request.user, request=found, changes={"assignee": assignee})
        except ValidationError as exc:
            messages.error(request, _message(exc))
        else:
            messages.success(request, f"Assigned to {assignee.get_username()}." if assignee else "Unassigned.")
        return redirect("compliance:explanation_detail", pk=pk)


class ExplanationLetterView(OfficerPage):
    roles = {"GET": {COMPLIANCE_OFFICER}}
    fmt = "pdf"

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        found = self.found(pk)
        if not found.letter_sha256:
            raise Http404("No letter has been sent for this request.")
        if self.fmt == "pdf":
            response = HttpResponse(bytes(found.letter_pdf), content_type="application/pdf")
        else:
            response = HttpResponse(found.letter_html.encode("utf-8"), content_type="text/html; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="explanation-{found.pk}.{self.fmt}"'
        return response


def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError) and hasattr(exc, "message_dict"):
        return "; ".join(f"{field}: {' '.join(errs)}" for field, errs in exc.message_dict.items())
    return str(exc.messages[0]) if isinstance(exc, ValidationError) else str(exc)
