"""The reviewer workbench: queue overview, claim next, the case page and its decision form.

Views stay thin: reads go through the selectors (``reviews.selectors.queue``,
``reviews.selectors.visibility``), every state change through the services
(``reviews.services.queue``, ``reviews.services.decisions``), which write the
audit events. Page permissions come from the one permission layer
(``RoleRequiredMixin``): reviewers, and admins who pass every role check.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.text import Truncator
from django.views import View
from rest_framework.exceptions import ValidationError as DRFValidationError

from hitl_portal.actors import request_user
from hitl_portal.api.exceptions import Forbidden
from hitl_portal.permissions import RoleRequiredMixin
from hitl_portal.roles import REVIEWER
from reviews.content import build_blocks, explanation_chart, remaining_input
from reviews.forms import EXTRA_PREFIX, ClaimForm, DecisionForm
from reviews.models import AISystem, Case, CaseKind, Decision, InterventionPoint, ReviewerProfile, ReviewerStatus
from reviews.selectors.attachments import attachment_url, attachments_of
from reviews.selectors.people import missing_trainings
from reviews.selectors.queue import claim_payload, live_claim_of, queue_overview, recent_decisions
from reviews.selectors.systems import intervention_point_get, system_get
from reviews.selectors.visibility import case_visible_to
from reviews.services.decisions import decision_record
from reviews.services.errors import ClaimConflict, ReviewerNotAllowed
from reviews.services.queue import claim_next, claim_release, claim_renew, escalated_case_ids, holds_live_claim
from reviews.views_kinds import KindDecisionForm, render_kind_case
from reviews.views_own import workbench_extras

NOTHING_TO_REVIEW = "Nothing to review right now."
# Session keys: the scope of the last "Claim next" (so the next case after a
# decision comes from the same queue) and unsaved drafts of lost claims.
SCOPE_KEY = "workbench_scope"
DRAFTS_KEY = "workbench_drafts"
MAX_DRAFTS = 5
# Nesting beyond this is shown as indented JSON rather than ever deeper lists.
MAX_INPUT_DEPTH = 6
LONG_TEXT_CHARS = 120

# Routing reason names of the contract, as a reviewer should read them.
REASON_TEXT: dict[str, str] = {
    "system_halted": "The AI system is halted (Art. 14(4)(e) stop): every case goes to a person.",
    "labeling": "Labeling stage: this case needs a human label.",
    "confidence_below": "The AI's confidence is below the review threshold.",
    "always_review_label": "The predicted label is on the always-review list.",
    "high_stakes": "A high-stakes condition on the input holds.",
    "high_stakes_field_missing": "A field a high-stakes rule checks is missing, so a person reviews it to be safe.",
    "random_sample": "Picked by the random quality-control sample.",
    "tool_always_review": "This tool is always reviewed before an agent may call it.",
    "text_length": "The generated text is longer than the review threshold.",
    "text_pattern": "The generated text matches a pattern that is always reviewed.",
    "text_keyword": "The generated text contains a keyword that is always reviewed.",
}

OPERATOR_TEXT = {"gt": ">", "gte": "≥", "lt": "<", "lte": "≤", "eq": "=", "ne": "≠", "in": "in"}


class ReviewerPageMixin(RoleRequiredMixin):
    """Workbench pages: reviewers (admins pass every role check)."""

    allowed_roles = (REVIEWER,)


# --- helpers (presentation only) ---------------------------------------------------------------


def _queue_standing(user: Any) -> tuple[ReviewerProfile | None, dict[int, str], str | None, str | None]:
    """The reviewer's profile and qualified systems, why they cannot claim at all, and which queues are closed.

    Returns ``(profile, systems, standing, training_note)``: ``standing`` is None when
    the queue may be offered, ``training_note`` None when no training closes a queue
    that others leave open. Only hints for the page (``claim_next`` decides, and says
    why, on every claim). One read of the profile, its qualifications and trainings
    serves both messages and the overview: the queue page is the reviewer's most
    visited page, and each read is a round trip.
    """
    profile = ReviewerProfile.objects.select_related("user").filter(user_id=user.pk).first()
    if profile is None:
        return None, {}, "Your account has no reviewer profile, so it cannot claim cases.", None
    systems = dict(profile.qualifications.values_list("pk", "name"))
    lacking = missing_trainings(profile.pk, systems) if systems else {}
    # Say which training for which system: the reviewer can act on that (Art. 26(2)).
    blocked = "; ".join(f"{systems[system_id]} needs {', '.join(kinds)}" for system_id, kinds in lacking.items())
    note = None
    if lacking and len(lacking) < len(systems):
        note = f"Some queues are closed to you until your training is recorded (Art. 26(2)): {blocked}."
    standing = None
    if profile.status == ReviewerStatus.SUSPENDED:
        reason = f" Reason given: {profile.status_reason}" if profile.status_reason else ""
        standing = f"Your reviewer account is suspended, so you cannot claim cases.{reason} Ask a compliance officer."
    elif not systems:
        standing = ("You are not qualified for any AI system yet, so there is nothing to claim. "
                    "Ask a compliance officer.")
    elif lacking and len(lacking) == len(systems):
        standing = (f"You cannot claim cases: a required training is missing or expired ({blocked}). "
                    "Ask a compliance officer to record your training.")
    return profile, systems, standing, note


def _display_tree(value: Any, depth: int = 0) -> dict[str, Any]:
    """A case input as nodes the template renders recursively (maps, lists, text)."""
    if depth >= MAX_INPUT_DEPTH and isinstance(value, dict | list):
        return {"kind": "json", "text": json.dumps(value, indent=2, ensure_ascii=False)}
    if isinstance(value, dict):
        if not value:
            return {"kind": "empty", "text": "(empty)"}
        items = [(str(k), _display_tree(v, depth + 1)) for k, v in value.items()]
        # Short facts first, then nested structures, then long text: the reviewer sees
        # the essentials at a glance whatever key order the database kept.
        items.sort(key=lambda item: _reading_rank(item[1]))
        return {"kind": "map", "items": items}
    if isinstance(value, list):
        if not value:
            return {"kind": "empty", "text": "(empty list)"}
        if all(not isinstance(v, dict | list) for v in value) and sum(len(str(v)) for v in value) <= LONG_TEXT_CHARS:
            return {"kind": "text", "text": ", ".join(_scalar_text(v) for v in value), "long": False}
        return {"kind": "list", "items": [_display_tree(v, depth + 1) for v in value]}
    if value is None:
        return {"kind": "empty", "text": "null"}
    text = _scalar_text(value)
    return {"kind": "text", "text": text, "long": len(text) > LONG_TEXT_CHARS or "\n" in text}


def _reading_rank(node: dict[str, Any]) -> int:
    if node["kind"] in ("map", "list", "json"):
        return 1
    return 2 if node.get("long") else 0


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _routing_explained(case: Case, routing: dict[str, Any], *, blind: bool) -> list[dict[str, str]]:
    """Each routing reason with its plain-language meaning and, where known, the rule that fired.

    Rule details are shown only when the point's current rules are the version
    that routed the case, and never details that would reveal a hidden AI label.
    """
    point: InterventionPoint = case.intervention_point
    same_rules = routing.get("rules_version", case.rules_version) == point.version
    explained = []
    for reason in routing.get("reasons") or []:
        detail = ""
        if same_rules and not blind:
            if reason == "confidence_below" and point.confidence_below is not None:
                detail = f"Threshold: {point.confidence_below * 100:.0f} %."
            elif reason == "always_review_label" and point.always_review_labels:
                detail = "Always reviewed: " + ", ".join(point.always_review_labels) + "."
        if same_rules and reason in ("high_stakes", "high_stakes_field_missing") and point.high_stakes:
            detail = "Rules: " + "; ".join(
                f"{rule.get('field')} {OPERATOR_TEXT.get(rule.get('op'), rule.get('op'))} {rule.get('value')}"
                for rule in point.high_stakes
            ) + "."
        explained.append({"name": reason, "text": REASON_TEXT.get(reason, reason.replace("_", " ")), "detail": detail})
    return explained


def _rich_input(case: Case, case_input: Any, display: list[dict[str, Any]]) -> dict[str, Any]:
    """The input as the point's display configuration shows it, plus the generic view of the rest.

    Without a configuration: the generic readable view of the whole input.
    """
    if not display:
        return {"blocks": [], "input_tree": _display_tree(case_input), "other_input": False, "has_pdf": False}
    attachments = {a.name: (attachment_url(a), a.content_type) for a in attachments_of(case)}
    blocks = build_blocks(case_input, display, attachment_url=attachments.get,
                          allowed_origins=settings.HITL_MEDIA_ALLOWED_ORIGINS, tree=_display_tree)
    rest = remaining_input(case_input, display)
    return {"blocks": blocks, "input_tree": _display_tree(rest) if rest else None, "other_input": True,
            "has_pdf": any(b["renderer"] == "pdf" and b.get("url") for b in blocks)}


def _adjudicating(case: Case) -> bool:
    """The held case stands escalated: its holder adjudicates (the blind phase is over)."""
    return case.pk in escalated_case_ids([case])


def _holds_live_claim(case: Case, user: Any) -> bool:
    return holds_live_claim(case, user, timezone.now())


def _visible_case(user: Any, pk: int) -> Case | None:
    return case_visible_to(user, pk, queryset=Case.objects.select_related("system", "intervention_point"))


def _error_dict(exc: Exception) -> dict[str, list[str]]:
    """Field errors of a service's ValidationError (Django's or DRF's) as ``{field: [messages]}``."""
    if isinstance(exc, ValidationError):
        if hasattr(exc, "error_dict"):
            return {field: list(msgs) for field, msgs in exc.message_dict.items()}
        return {"__all__": list(exc.messages)}
    detail = getattr(exc, "detail", None)
    if isinstance(detail, dict):
        return {str(k): [str(m) for m in (v if isinstance(v, list) else [v])] for k, v in detail.items()}
    if isinstance(detail, list):
        return {"__all__": [str(m) for m in detail]}
    return {"__all__": [str(detail or exc)]}


def _keep_draft(request: HttpRequest, case_id: int, data: dict[str, Any]) -> None:
    """Keep what the reviewer typed for a claim they lost, to fill it in if they get the case again."""
    drafts: dict[str, Any] = dict(request.session.get(DRAFTS_KEY) or {})
    drafts.pop(str(case_id), None)
    draft: dict[str, Any] = {key: str(data.get(key) or "")[:10_000] for key in ("outcome", "label", "rationale")}
    for key in data:
        # Answers to the point's extra decision fields (a multiple choice has several values).
        if key.startswith(EXTRA_PREFIX) and len(draft) < 40:
            values = data.getlist(key) if hasattr(data, "getlist") else [data.get(key)]
            draft[key] = [str(v)[:10_000] for v in values] if len(values) > 1 else str(values[0] or "")[:10_000]
    drafts[str(case_id)] = draft
    request.session[DRAFTS_KEY] = dict(list(drafts.items())[-MAX_DRAFTS:])


def _pop_draft(request: HttpRequest, case_id: int) -> dict[str, Any] | None:
    drafts: dict[str, Any] = dict(request.session.get(DRAFTS_KEY) or {})
    draft = drafts.pop(str(case_id), None)
    if draft is not None:
        request.session[DRAFTS_KEY] = drafts
    return draft


def _scope_objects(system_slug: str, point_slug: str) -> tuple[AISystem | None, InterventionPoint | None]:
    """The system / intervention point a claim is limited to (Http404 for unknown slugs)."""
    system = system_get(slug=system_slug) if system_slug else None
    point = intervention_point_get(system=system, slug=point_slug) if system and point_slug else None
    return system, point


def _claim_and_open(
    request: HttpRequest, *, system_slug: str = "", point_slug: str = "", empty_message: str = NOTHING_TO_REVIEW
) -> HttpResponse:
    """Claim the next case in the given scope and open it; back to the queue with a message otherwise."""
    try:
        system, point = _scope_objects(system_slug, point_slug)
    except Http404:
        messages.error(request, "That queue does not exist (any more).")
        return redirect("reviews:queue")
    held = live_claim_of(reviewer=request_user(request))
    if held is not None:
        # One case at a time: a second claim would only hide the first from everyone else.
        messages.info(request, f"You still hold case #{held.pk}: decide or release it first.")
        return redirect("reviews:case", pk=held.pk)
    try:
        case = claim_next(reviewer=request_user(request), system=system, point=point)
    except ReviewerNotAllowed as exc:
        messages.error(request, f"You cannot claim cases: {exc.detail}")
        return redirect("reviews:queue")
    request.session[SCOPE_KEY] = {"system": system_slug, "point": point_slug}
    if case is None:
        messages.info(request, empty_message)
        return redirect("reviews:queue")
    return redirect("reviews:case", pk=case.pk)


def _lost_claim(request: HttpRequest, pk: int) -> HttpResponse:
    """The page for a case the reviewer does not (or no longer) hold: say so, link back."""
    # Deciding a case makes it visible to its reviewer (cases_visible_to), so asking the
    # decision alone is the same answer, by the (case, reviewer) index.
    decided = Decision.objects.filter(case_id=pk, reviewer=request_user(request)).exists()
    return render(request, "reviews/claim_lost.html", {"case_id": pk, "decided": decided}, status=409)


# --- pages -------------------------------------------------------------------------------------


class QueueView(ReviewerPageMixin, View):
    """Queue overview: claimable work per intervention point, the live claim, recent decisions."""

    def get(self, request: HttpRequest) -> HttpResponse:
        user = request_user(request)
        profile, systems, standing, training_note = _queue_standing(user)
        rows = queue_overview(reviewer=user, profile=profile, system_ids=set(systems)) if profile else []
        context = {
            "standing": standing,
            "training_note": training_note,
            "rows": rows,
            "total_claimable": sum(row["claimable"] for row in rows),
            "live_claim": live_claim_of(reviewer=user),
            "recent": list(recent_decisions(reviewer=user, limit=20)),
            # "0 minutes ago" reads like a bug: anything newer than this is "just now".
            "just_now": timezone.now() - timedelta(minutes=1),
        }
        return render(request, "reviews/queue.html", context)


class ClaimNextView(ReviewerPageMixin, View):
    """POST: claim the next case (optionally of one system / intervention point) and open it."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest) -> HttpResponse:
        form = ClaimForm(request.POST)
        if not form.is_valid():
            messages.error(request, "That queue does not exist.")
            return redirect("reviews:queue")
        return _claim_and_open(
            request, system_slug=form.cleaned_data["system"], point_slug=form.cleaned_data["point"]
        )


class CaseView(ReviewerPageMixin, View):
    """The case the reviewer holds: input, AI suggestion (unless blind), why routed, the decision form."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        case = _visible_case(request.user, pk)
        if case is None or not _holds_live_claim(case, request.user):
            return _lost_claim(request, pk)
        payload = claim_payload(case)
        draft = _pop_draft(request, case.pk)
        form = self._form(case, payload, initial=draft)
        return self._render(request, case, payload, form)

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        case = _visible_case(request.user, pk)
        if case is None or not _holds_live_claim(case, request.user):
            return self._claim_lost_on_submit(request, pk)
        payload = claim_payload(case)
        form = self._form(case, payload, data=request.POST)
        if not form.is_valid():
            return self._render(request, case, payload, form, status=400)
        try:
            decision_record(reviewer=request_user(request), case=case, **form.service_arguments())
        except ClaimConflict:
            return self._claim_lost_on_submit(request, pk)
        except Forbidden as exc:
            # Suspended meanwhile, or an escalated case that needs an adjudicator.
            _keep_draft(request, pk, request.POST)
            messages.error(request, f"Your decision on case #{pk} was NOT saved: {exc.detail}")
            return redirect("reviews:queue")
        except (ValidationError, DRFValidationError) as exc:
            for field, errors in _error_dict(exc).items():
                target = form.error_target(field)
                for error in errors:
                    form.add_error(target, error)
            return self._render(request, case, payload, form, status=400)
        _pop_draft(request, case.pk)
        scope = request.session.get(SCOPE_KEY) or {}
        messages.success(request, f"Decision saved on case #{case.pk}.")
        return _claim_and_open(
            request,
            system_slug=scope.get("system", ""),
            point_slug=scope.get("point", ""),
            empty_message="Decision saved. Nothing else to review right now.",
        )

    @staticmethod
    def _form(case: Case, payload: dict[str, Any], **kwargs: Any) -> DecisionForm | KindDecisionForm:
        if case.intervention_point.kind != CaseKind.CLASSIFICATION:
            return KindDecisionForm(case=case, **kwargs)
        return DecisionForm(labels=list(payload.get("labels") or case.system.labels),
                            blind=payload.get("prediction") is None, final=_adjudicating(case),
                            extra_fields=case.intervention_point.decision_fields or [], **kwargs)

    def _claim_lost_on_submit(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The lease ran out (or the case moved on) before the decision was saved: say so, keep the draft."""
        _keep_draft(request, pk, request.POST)
        rationale = (request.POST.get("rationale") or "").strip()
        kept = f" What you wrote: “{Truncator(rationale).chars(300)}”" if rationale else ""
        messages.error(
            request,
            f"Your claim on case #{pk} has expired or is no longer yours, so your decision was NOT saved. "
            f"The case went back to the queue; if you get it again, your draft is filled in.{kept}",
        )
        return redirect("reviews:queue")

    def _render(
        self, request: HttpRequest, case: Case, payload: dict[str, Any], form: DecisionForm | KindDecisionForm,
        status: int = 200,
    ) -> HttpResponse:
        if isinstance(form, KindDecisionForm):
            reasons = _routing_explained(case, payload.get("routing") or {}, blind=False)
            return render_kind_case(request, case, form, reasons=reasons, status=status)
        prediction = payload.get("prediction")
        blind = prediction is None
        confidence = prediction.get("confidence") if prediction else None
        case_input = payload.get("input", case.input)
        display = case.intervention_point.display or []
        context = {
            "case": case,
            "payload": payload,
            **_rich_input(case, case_input, display),
            "explanation": None if blind else explanation_chart(case.explanation),
            "prediction": prediction,
            "confidence_pct": None if confidence is None else round(confidence * 100, 1),
            "blind": blind,
            "labeling": case.intervention_point.stage == "labeling" and case.prediction_label is None,
            "reasons": _routing_explained(case, payload.get("routing") or {}, blind=blind),
            "rules_version": (payload.get("routing") or {}).get("rules_version", case.rules_version),
            "guidelines": payload.get("guidelines", case.intervention_point.guidelines),
            "form": form,
            "now": timezone.now(),
            **workbench_extras(request, case, adjudicating=form.final),
        }
        return render(request, "reviews/case.html", context, status=status)


class RenewView(ReviewerPageMixin, View):
    """POST: extend the lease. Answers JSON to the page's script, a redirect to plain forms."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, pk: int) -> HttpResponseBase:
        wants_json = "application/json" in request.headers.get("Accept", "")
        case = _visible_case(request.user, pk)
        try:
            if case is None:
                raise ClaimConflict("You hold no live claim on this case.")
            case = claim_renew(reviewer=request_user(request), case=case)
        except (ClaimConflict, ReviewerNotAllowed) as exc:
            code = getattr(exc, "code_name", "no_live_claim")
            if code == "max_hold_reached":
                detail = str(exc.detail)
            elif isinstance(exc, ClaimConflict):
                detail = f"Your claim on case #{pk} has expired or is no longer yours; it cannot be renewed."
                code = "no_live_claim"
            else:
                detail = f"The lease on case #{pk} cannot be renewed: {exc.detail}"
            if wants_json:
                return JsonResponse({"code": code, "detail": detail,
                                     "queue_url": reverse("reviews:queue")}, status=409)
            messages.error(request, detail)
            if code == "max_hold_reached":
                return redirect("reviews:case", pk=pk)
            return redirect("reviews:queue")
        assert case.lease_expires_at is not None  # claim_renew has just extended the lease
        if wants_json:
            return JsonResponse({"lease_expires_at": case.lease_expires_at.isoformat(),
                                 "now": timezone.now().isoformat()})
        messages.success(request, f"Lease renewed until {timezone.localtime(case.lease_expires_at):%H:%M:%S}.")
        return redirect("reviews:case", pk=pk)


class ReleaseView(ReviewerPageMixin, View):
    """POST: give the case back to the queue."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        case = _visible_case(request.user, pk)
        try:
            if case is None:
                raise ClaimConflict("You hold no live claim on this case.")
            claim_release(reviewer=request_user(request), case=case)
        except ClaimConflict:
            messages.error(request, f"Your claim on case #{pk} had already expired or is no longer yours.")
            return redirect("reviews:queue")
        messages.info(request, f"Case #{pk} released back to the queue.")
        return redirect("reviews:queue")
