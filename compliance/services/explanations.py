"""Writes of the Art. 86 channel: references, requests, letters, contests, deadline reminders.

Every state change records its audit event in the same transaction. No event
copies the person's message, contact or the verification code: events name the
request and the case by id, and the letter by its SHA-256.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from audit.services import record_event
from compliance.explanation_letter import RenderedLetter, letter_context, render_letter
from compliance.models import CaseReference, ExplanationRequest, ExplanationStatus
from compliance.selectors.explanations import (
    OPEN_STATUSES,
    active_officers,
    code_hash,
    least_loaded_officer,
    open_request_for_case,
)
from hitl_portal.errors import Conflict
from hitl_portal.models import NotificationKind
from hitl_portal.notifications import notify
from hitl_portal.roles import COMPLIANCE_OFFICER
from reviews.models import Case, CaseStatus
from reviews.services.decisions import case_reopen

# Unambiguous letters and digits (no 0/O, 1/I/L): the code is typed from a letter or a screen.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 12  # 31^12 ≈ 2^59: with a handful of attempts per reference, guessing is hopeless
# Remind the assignee this many days before the statutory deadline (and once more when it passes).
REMINDER_DAYS_BEFORE = 5
NOTE_MAX = 4000


def _new_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(raw[i:i + 4] for i in range(0, CODE_LENGTH, 4))


@transaction.atomic
def reference_issue(*, actor: Any, case: Case) -> str:
    """Issue (or reissue) the case's verification code; returns it once, keeps only its keyed hash."""
    if case.is_gold:
        raise Conflict("Gold items concern nobody: no reference is issued.", code="gold_case")
    code = _new_code()
    now = timezone.now()
    _, created = CaseReference.objects.update_or_create(
        case=case, defaults={"code_hash": code_hash(code), "issued_at": now, "issued_by": actor},
    )
    record_event(
        "explanation.reference_issued", actor=actor, obj=case, case_id=case.pk, system_id=case.system_id,
        data={"reissued": not created},
    )
    return code


def _officer_link(request: ExplanationRequest) -> str:
    return reverse("compliance:explanation_detail", args=[request.pk])


@transaction.atomic
def explanation_request_submit(*, case: Case, message: str = "", contact: str = "") -> ExplanationRequest:
    """Register an affected person's request with its statutory deadline and assign it to an officer.

    A second request while one is open for the case returns the open one (the
    person is told the same registration and deadline again).
    """
    existing = open_request_for_case(case)
    if existing is not None:
        return existing
    now = timezone.now()
    assignee = least_loaded_officer()
    request = ExplanationRequest(
        case=case, message=message.strip()[:NOTE_MAX], contact=contact.strip(), received_at=now,
        deadline=now + timedelta(days=settings.HITL_EXPLANATION_DEADLINE_DAYS), assignee=assignee,
    )
    request._history_user = None  # type: ignore[attr-defined]
    request.full_clean(exclude=["case", "assignee", "answered_by", "letter_pdf"])
    request.save()
    record_event(
        "explanation.requested", actor=None, obj=request, case_id=case.pk, system_id=case.system_id,
        data={"request_id": request.pk, "deadline": request.deadline, "assignee": assignee.username if assignee
              else None, "with_contact": bool(request.contact)},
    )
    subject = f"Art. 86 explanation request #{request.pk} ({case.system.slug} / {case.external_id})"
    body = f"Answer by {request.deadline:%d %b %Y}."
    if assignee is not None:
        notify(kind=NotificationKind.EXPLANATION_DEADLINE, subject=subject, body=body,
               link=_officer_link(request), roles=(), users=[assignee], severity="info",
               dedupe_key=f"explanation:{request.pk}:assigned")
    else:
        notify(kind=NotificationKind.EXPLANATION_DEADLINE, subject=f"Unassigned: {subject}",
               body=f"{body} No active compliance officer could be assigned.", link=_officer_link(request),
               dedupe_key=f"explanation:{request.pk}:unassigned")
    return request


def _locked(request: ExplanationRequest) -> ExplanationRequest:
    return ExplanationRequest.objects.select_for_update(of=("self",)).select_related("case", "case__system").get(
        pk=request.pk)


def contest_url(base: str = "") -> str:
    """Where the person contests: the public page (absolute when the portal's base URL is known)."""
    return (base or settings.HITL_BASE_URL or "").rstrip("/") + reverse("explain:contest")


def explanation_letter_preview(*, request: ExplanationRequest, note: str, base_url: str = "") -> bytes:
    """The letter as it would be sent now (HTML only; nothing recorded)."""
    from django.template.loader import render_to_string

    context = letter_context(request, note=note, contest_url=contest_url(base_url))
    return render_to_string("compliance/explanations/letter.html", context).encode("utf-8")


@transaction.atomic
def explanation_answer(
    *, actor: Any, request: ExplanationRequest, note: str = "", base_url: str = ""
) -> RenderedLetter:
    """Generate the letter from the case, keep it, record its SHA-256 and send it to the person's contact."""
    request = _locked(request)
    if request.status not in OPEN_STATUSES:
        raise Conflict("This request is already answered or closed.", code="not_open")
    if len(note) > NOTE_MAX:
        raise ValidationError({"note": [f"At most {NOTE_MAX} characters."]})
    letter = render_letter(letter_context(request, note=note, contest_url=contest_url(base_url)))
    before = {"status": request.status}
    request.officer_note = note.strip()
    request.answered_at = timezone.now()
    request.answered_by = actor
    if request.status == ExplanationStatus.RECEIVED:
        request.status = ExplanationStatus.ANSWERED
    request.letter_html = letter.html.decode("utf-8")
    request.letter_pdf = letter.pdf
    request.letter_sha256 = letter.sha256
    request.letter_pdf_sha256 = letter.pdf_sha256
    request._history_user = actor  # type: ignore[attr-defined]
    request.save()
    record_event(
        "explanation.answered", actor=actor, obj=request, case_id=request.case_id,
        system_id=request.case.system_id, before=before,
        data={"request_id": request.pk, "html_sha256": letter.sha256, "pdf_sha256": letter.pdf_sha256,
              "in_time": request.answered_at <= request.deadline, "sent_to_contact": bool(request.contact)},
    )
    if request.contact:
        transaction.on_commit(lambda: _mail_letter(request.pk))
    return letter


def _mail_letter(request_id: int) -> None:
    request = ExplanationRequest.objects.select_related("case__system").get(pk=request_id)
    mail = EmailMessage(
        subject=f"Explanation of the decision about you ({request.case.system.name})",
        body="Please find attached the explanation you asked for under Article 86 of the EU AI Act.",
        to=[request.contact],
    )
    mail.attach(f"explanation-{request.pk}.pdf", bytes(request.letter_pdf), "application/pdf")
    # A mail server that is down must not undo the answer: the officer still has the letter to post.
    mail.send(fail_silently=True)


@transaction.atomic
def explanation_contest(
    *, actor: Any, request: ExplanationRequest, reason: str, by_officer: bool = False
) -> ExplanationRequest:
    """The person contests the decision: the case is reopened to someone who did not decide it before."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ["Say briefly why you contest the decision."]})
    request = _locked(request)
    if request.status != ExplanationStatus.ANSWERED:
        raise Conflict("Only an answered request can be contested (once).", code="not_answered")
    case = request.case
    if case.status not in (CaseStatus.DECIDED, CaseStatus.AUTO_ACCEPTED):
        raise Conflict("The case is still under review; it cannot be contested yet.", code="not_decided")
    label = case.final_label
    case_reopen(actor=actor, case=case, reason=f"Art. 86 contest of request #{request.pk}: {reason[:500]}")
    request.status = ExplanationStatus.CONTESTED
    request.contested_at = timezone.now()
    request.contest_reason = reason[:NOTE_MAX]
    request.contested_by_officer = by_officer
    request.label_at_contest = label
    # The contest is a new duty to answer: a fresh statutory deadline runs from it.
    request.deadline = request.contested_at + timedelta(days=settings.HITL_EXPLANATION_DEADLINE_DAYS)
    request._history_user = actor  # type: ignore[attr-defined]
    request.save()
    record_event(
        "explanation.contested", actor=actor, obj=request, case_id=case.pk, system_id=case.system_id,
        data={"request_id": request.pk, "by_officer": by_officer, "label_contested": label,
              "review_round": Case.objects.values_list("review_round", flat=True).get(pk=case.pk)},
    )
    users = [request.assignee] if request.assignee is not None else []
    notify(kind=NotificationKind.EXPLANATION_DEADLINE,
           subject=f"Art. 86 request #{request.pk} contested: case {case.external_id} reopened",
           link=_officer_link(request), roles=() if users else (COMPLIANCE_OFFICER,), users=users,
           severity="info", dedupe_key=f"explanation:{request.pk}:contested")
    return request


_UPDATABLE = {"status", "assignee", "note"}


@transaction.atomic
def explanation_update(
    *, actor: Any, request: ExplanationRequest, changes: dict[str, Any]
) -> ExplanationRequest:
    """An officer closes/reopens a request, reassigns it or edits the note (``changes``: status/assignee/note)."""
    unknown = set(changes) - _UPDATABLE
    if unknown:
        raise ValidationError({name: ["Unknown field."] for name in sorted(unknown)})
    request = _locked(request)
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    if "status" in changes:
        status = changes["status"]
        allowed = {ExplanationStatus.CLOSED} | ({ExplanationStatus.RECEIVED} if request.answered_at is None
                                                else {ExplanationStatus.ANSWERED})
        if status not in allowed:
            raise ValidationError({"status": [
                f"From {request.status} a request can go to: {', '.join(sorted(allowed))} (answering and "
                "contesting have their own actions)."]})
        before["status"], after["status"] = request.status, status
        request.status = status
    if "assignee" in changes:
        assignee = changes["assignee"]
        if assignee is not None and not active_officers().filter(pk=assignee.pk).exists():
            raise ValidationError({"assignee": ["Not an active compliance officer."]})
        before["assignee"] = request.assignee.username if request.assignee else None
        after["assignee"] = assignee.username if assignee else None
        request.assignee = assignee
    if "note" in changes:
        note = changes["note"] or ""
        if len(note) > NOTE_MAX:
            raise ValidationError({"note": [f"At most {NOTE_MAX} characters."]})
        # Only whether it changed: the note may quote the person's own words.
        before["note_changed"] = after["note_changed"] = note.strip() != request.officer_note
        request.officer_note = note.strip()
    if not after:
        return request
    request._history_user = actor  # type: ignore[attr-defined]
    request.save()
    record_event("explanation.updated", actor=actor, obj=request, case_id=request.case_id,
                 system_id=request.case.system_id, before=before, after=after)
    if "assignee" in changes and request.assignee is not None and request.status in OPEN_STATUSES:
        notify(kind=NotificationKind.EXPLANATION_DEADLINE,
               subject=f"Art. 86 request #{request.pk} assigned to you", body=f"Answer by {request.deadline:%d %b %Y}.",
               link=_officer_link(request), roles=(), users=[request.assignee], severity="info")
    return request


def explanation_deadline_reminders(*, now: Any = None) -> int:
    """Remind the assignee (or every officer) before the deadline and once it passed; returns alerts raised.

    Once each: the notification's ``dedupe_key`` names the request, its deadline and the kind of reminder.
    """
    now = now or timezone.now()
    raised = 0
    soon = now + timedelta(days=REMINDER_DAYS_BEFORE)
    rows = ExplanationRequest.objects.select_related("case", "case__system", "assignee").filter(
        status__in=OPEN_STATUSES, deadline__lte=soon).defer("letter_pdf", "letter_html")
    for request in rows:
        overdue = request.deadline <= now
        kind = "overdue" if overdue else "due_soon"
        users = [request.assignee] if request.assignee is not None and request.assignee.is_active else []
        subject = (f"Art. 86 request #{request.pk} is overdue (deadline {request.deadline:%d %b %Y})" if overdue
                   else f"Art. 86 request #{request.pk} is due on {request.deadline:%d %b %Y}")
        with transaction.atomic():
            # Overdue goes to every officer as well: a missed statutory deadline is everyone's problem.
            alert = notify(
                kind=NotificationKind.EXPLANATION_DEADLINE, subject=subject,
                body=f"Case {request.case.external_id} of {request.case.system.name}.",
                link=_officer_link(request), roles=(COMPLIANCE_OFFICER,) if overdue or not users else (),
                users=users, severity="critical" if overdue else "warning",
                dedupe_key=f"explanation:{request.pk}:{request.deadline:%Y%m%d}:{kind}",
            )
        raised += alert is not None
    return raised
