"""Workbench pages for a reviewer's own work: my decisions, comments, skip, undo; the case page's extras.

Thin like ``reviews.views``: reads through ``reviews.selectors.own_work`` and
``reviews.selectors.escalations``, writes through ``reviews.services.own_work``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views import View

from hitl_portal.actors import request_user
from hitl_portal.errors import Conflict, Forbidden
from hitl_portal.permissions import RoleRequiredMixin
from hitl_portal.roles import ADMIN, COMPLIANCE_OFFICER, REVIEWER, user_role
from reviews.forms import CommentForm, SkipForm
from reviews.models import Case, Decision
from reviews.selectors.escalations import adjudication_context
from reviews.selectors.own_work import (
    comment_rows,
    comments_visible_to,
    my_decisions,
    own_decisions_on,
    skip_count,
    undoable,
)
from reviews.selectors.queue import REASONS_HIDDEN_WHEN_BLIND, is_served_blind
from reviews.selectors.visibility import case_visible_to
from reviews.services.errors import ClaimConflict
from reviews.services.own_work import case_comment_add, claim_skip, decision_undo, undo_seconds
from reviews.services.queue import holds_live_claim, lease_seconds, max_hold_seconds

PAGE_SIZE = 50


class _ReviewerPage(RoleRequiredMixin):
    allowed_roles = (REVIEWER,)


def _errors(exc: ValidationError) -> str:
    return " ".join(str(m) for msgs in exc.message_dict.values() for m in msgs)


def workbench_extras(request: HttpRequest, case: Case, *, adjudicating: bool) -> dict[str, Any]:
    """What the held case's page shows beside the decision form (partials of ``reviews/case.html``).

    The adjudication context only once the blind phase is over (the holder adjudicates);
    comments as ``comments_visible_to`` allows; the lease's renewal bounds for the heartbeat.
    """
    max_hold_until = (case.claimed_at or timezone.now()) + timedelta(seconds=max_hold_seconds())
    adjudication = adjudication_context(case) if adjudicating else None
    if adjudication is not None and is_served_blind(case):
        # Blind adjudication: each verdict's label, but not whether it agreed with the hidden AI label.
        for row in adjudication["decisions"]:
            if row["outcome"] != "escalate":
                row["outcome"], row["outcome_text"] = "answer", "Answered"
    return {
        "adjudicating": adjudicating,
        "adjudication": adjudication,
        "comments": comment_rows(comments_visible_to(request_user(request), case)),
        "comment_form": CommentForm(),
        "skip_form": SkipForm(),
        "lease_seconds": lease_seconds(),
        "max_hold_until": max_hold_until,
    }


def _back_to_case(request: HttpRequest, case: Case) -> HttpResponse:
    """After a comment: the page the author came from (held case, officer page, or their decision)."""
    if holds_live_claim(case, request_user(request), timezone.now()):
        return redirect("reviews:case", pk=case.pk)
    if user_role(request.user) in (COMPLIANCE_OFFICER, ADMIN):
        return redirect("reviews:officer_case", pk=case.pk)
    return redirect("reviews:my_case", pk=case.pk)


class MyDecisionsView(_ReviewerPage, View):
    """My decisions: every decision of mine, newest first, each a link to the case as I saw it."""

    def get(self, request: HttpRequest) -> HttpResponse:
        page = Paginator(my_decisions(reviewer=request_user(request)), PAGE_SIZE).get_page(request.GET.get("page"))
        rows = [{"decision": d, "undoable": undoable(d)} for d in page.object_list]
        return render(request, "reviews/my_decisions.html", {
            "page": page, "rows": rows, "skips": skip_count(reviewer=request_user(request)),
            "undo_seconds": undo_seconds(),
            "just_now": timezone.now() - timedelta(minutes=1),
        })


class MyCaseView(_ReviewerPage, View):
    """A case I decided, as I saw it: the input, the AI suggestion only if it was shown to me, my verdict.

    Never another reviewer's verdict, the final label, the ground truth or a gold marker.
    """

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        case = case_visible_to(request.user, pk, queryset=Case.objects.select_related("system", "intervention_point"))
        mine = own_decisions_on(reviewer=request_user(request), case=case) if case is not None else []
        if case is None or not mine:
            return render(request, "404.html", status=404)
        from reviews.views import _display_tree, _routing_explained

        shown = all(d.ai_shown for d in mine)
        routing = {"reasons": [r for r in case.routing_reasons or [] if shown or r not in REASONS_HIDDEN_WHEN_BLIND],
                   "rules_version": case.rules_version}
        return render(request, "reviews/my_case.html", {
            "case": case,
            "input_tree": _display_tree(case.input),
            "ai_shown": shown,
            "reasons": _routing_explained(case, routing, blind=not shown),
            "mine": [{"decision": d, "undoable": undoable(d, case=case)} for d in mine],
            "comments": comment_rows(comments_visible_to(request_user(request), case)),
            "comment_form": CommentForm(),
        })


class CommentView(RoleRequiredMixin, View):
    """POST: add a comment (holder, a reviewer who decided it, officers)."""

    allowed_roles = (REVIEWER, COMPLIANCE_OFFICER)
    http_method_names = ["post"]

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        case = case_visible_to(request.user, pk)
        if case is None:
            return render(request, "404.html", status=404)
        form = CommentForm(request.POST)
        body = form.data.get("body", "")
        try:
            case_comment_add(author=request_user(request), case=case, body=str(body))
        except ValidationError as exc:
            messages.error(request, f"Comment not saved: {_errors(exc)}")
        except Forbidden as exc:
            messages.error(request, f"Comment not saved: {exc.detail}")
        else:
            messages.success(request, "Comment added.")
        return _back_to_case(request, case)


class SkipView(_ReviewerPage, View):
    """POST: skip the held case with a reason; it goes back to the queue, not to me again this round."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        case = case_visible_to(request.user, pk)
        form = SkipForm(request.POST)
        reason = str(form.data.get("reason", ""))
        try:
            if case is None:
                raise ClaimConflict("You hold no live claim on this case.")
            claim_skip(reviewer=request_user(request), case=case, reason=reason)
        except ValidationError as exc:
            messages.error(request, f"Not skipped: {_errors(exc)}")
            return redirect("reviews:case", pk=pk)
        except ClaimConflict:
            messages.error(request, f"Your claim on case #{pk} had already expired or is no longer yours.")
            return redirect("reviews:queue")
        messages.info(request, f"Case #{pk} skipped: it went back to the queue and will not be offered to you again.")
        return redirect("reviews:queue")


class UndoView(_ReviewerPage, View):
    """POST: undo my decision (within the window, case still open); the case opens again for me."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        decision = Decision.objects.filter(pk=pk, reviewer_id=request.user.pk).first()
        if decision is None:
            return render(request, "404.html", status=404)
        try:
            case = decision_undo(reviewer=request_user(request), decision=decision)
        except (Conflict, Forbidden) as exc:
            messages.error(request, f"Not undone: {exc.detail}")
            return redirect("reviews:my_decisions")
        messages.success(request, f"Your decision on case #{case.pk} was undone: decide it again.")
        return redirect("reviews:case", pk=case.pk)
