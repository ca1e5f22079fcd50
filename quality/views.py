"""Quality pages: reviewers, one reviewer's quality, agreement, calibration, gold items, thresholds.

Thin views over the selectors and services; permissions from the one layer
(``RoleRequiredMixin``). Managers and compliance officers read; only compliance
officers (and admins) act: suspend or reinstate, record training, create gold
items and calibration sessions, apply a threshold. A reviewer sees only their own
quality page, with gold figures from the daily snapshot.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views import View

from hitl_portal.permissions import RoleRequiredMixin
from hitl_portal.roles import COMPLIANCE_OFFICER, MANAGER, REVIEWER, user_role
from quality.forms import (
    AgreementFilterForm,
    CalibrationForm,
    GoldImportForm,
    GoldItemForm,
    ReviewerStatusForm,
    ThresholdApplyForm,
    TrainingRecordForm,
)
from quality.models import CalibrationSession
from quality.selectors import (
    agreement_rollup_status,
    calibration_results,
    calibration_sessions,
    default_period,
    gold_items,
    live_agreement,
    reviewer_quality,
    reviewers_overview,
    threshold_candidates,
    threshold_curve,
)
from quality.services.calibration import calibration_session_create
from quality.services.gold import gold_item_create, gold_items_import_csv
from quality.services.thresholds import threshold_apply
from reviews.selectors.people import reviewer_profile_get
from reviews.selectors.systems import intervention_point_get, system_get
from reviews.services.people import reviewer_update, training_record_add

OVERSIGHT = (COMPLIANCE_OFFICER, MANAGER)


def _errors_into(form: Any, exc: ValidationError) -> None:
    """A service's field errors onto the form (fields the form lacks become form-wide errors, named)."""
    items = exc.message_dict.items() if hasattr(exc, "error_dict") else [(None, exc.messages)]
    for field, errors in items:
        target = field if field in form.fields else None
        for error in errors:
            named = target is None and field not in (None, "__all__", "non_field_errors")
            form.add_error(target, f"{field}: {error}" if named else error)


class QualityIndexView(RoleRequiredMixin, View):
    """Reviewers at a glance: gold accuracy, status, automation bias, rubber-stamp flags."""

    allowed_roles = (*OVERSIGHT, REVIEWER)

    def get(self, request: HttpRequest) -> HttpResponse:
        if user_role(request.user) == REVIEWER:
            return redirect("quality:reviewer", username=request.user.get_username())
        since, until = default_period()
        return render(request, "quality/index.html", {
            "rows": reviewers_overview(since=since, until=until), "since": since, "until": until,
            "section": "reviewers",
        })


class ReviewerQualityPage(RoleRequiredMixin, View):
    """One reviewer's quality; officers suspend, reinstate and record training here."""

    roles = {"GET": (*OVERSIGHT, REVIEWER), "POST": (COMPLIANCE_OFFICER,)}

    def _profile(self, request: HttpRequest, username: str) -> tuple[Any, bool]:
        as_self = user_role(request.user) == REVIEWER
        if as_self and request.user.get_username() != username:
            raise PermissionDenied("Reviewers may open only their own quality page.")
        return reviewer_profile_get(username=username), as_self

    def get(self, request: HttpRequest, username: str) -> HttpResponse:
        profile, as_self = self._profile(request, username)
        return self._render(request, profile, as_self)

    def post(self, request: HttpRequest, username: str) -> HttpResponse:
        profile, _ = self._profile(request, username)
        action = request.POST.get("action")
        if action == "status":
            form = ReviewerStatusForm(request.POST)
            if form.is_valid():
                try:
                    reviewer_update(actor=request.user, profile=profile, status=form.cleaned_data["status"],
                                    reason=form.cleaned_data["reason"])
                except ValidationError as exc:
                    _errors_into(form, exc)
                else:
                    messages.success(request, f"{username} is now {form.cleaned_data['status']}.")
                    return redirect("quality:reviewer", username=username)
            return self._render(request, profile, False, status_form=form, status=400)
        if action == "training":
            training_form = TrainingRecordForm(request.POST)
            if training_form.is_valid():
                data = training_form.cleaned_data
                try:
                    training_record_add(
                        actor=request.user, profile=profile, title=data["title"], kind=data["kind"],
                        completed_at=data["completed_at"], expires_at=data.get("expires_at"),
                        system=data.get("system"), evidence_url=data.get("evidence_url") or "",
                    )
                except ValidationError as exc:
                    _errors_into(training_form, exc)
                else:
                    messages.success(request, f"Training recorded for {username}.")
                    return redirect("quality:reviewer", username=username)
            return self._render(request, profile, False, training_form=training_form, status=400)
        messages.error(request, "Unknown action.")
        return redirect("quality:reviewer", username=username)

    def _render(self, request: HttpRequest, profile: Any, as_self: bool, *, status_form: Any = None,
                training_form: Any = None, status: int = 200) -> HttpResponse:
        figures = reviewer_quality(profile, as_self=as_self)
        officer = self.may(request, "POST")
        next_status = "active" if profile.status == "suspended" else "suspended"
        context = {
            "profile": profile,
            "q": figures,
            "as_self": as_self,
            "officer": officer,
            "next_status": next_status,
            "status_form": status_form or ReviewerStatusForm(initial={"status": next_status}),
            "training_form": training_form or TrainingRecordForm(initial={"completed_at": timezone.localdate()}),
            "section": "reviewers",
        }
        return render(request, "quality/reviewer.html", context, status=status)


def _day_start(day: dt.date | None) -> dt.datetime | None:
    if day is None:
        return None
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


class AgreementPage(RoleRequiredMixin, View):
    """Agreement on live multi-review cases, per intervention point and per period."""

    allowed_roles = OVERSIGHT

    def get(self, request: HttpRequest) -> HttpResponse:
        form = AgreementFilterForm(request.GET or None)
        system = None
        since = until = None
        period = "week"
        if form.is_bound and form.is_valid():
            system = form.cleaned_data.get("system")
            since = _day_start(form.cleaned_data.get("date_from"))
            until = _day_start(form.cleaned_data.get("date_to"))
            period = form.cleaned_data.get("period") or "week"
        since, until = default_period(since, until)
        result = live_agreement(since=since, until=until, system=system.slug if system else None, period=period)
        return render(request, "quality/agreement.html", {
            "form": form, "result": result, "section": "agreement", "rollup": agreement_rollup_status(),
        })


class CalibrationListPage(RoleRequiredMixin, View):
    """Calibration sessions; officers start new ones."""

    roles = {"GET": OVERSIGHT, "POST": (COMPLIANCE_OFFICER,)}

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request, CalibrationForm() if self.may(request, "POST") else None)

    def post(self, request: HttpRequest) -> HttpResponse:
        form = CalibrationForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                session = calibration_session_create(
                    actor=request.user, name=data["name"], description=data.get("description") or "",
                    items=list(data["items"]), reviewers=list(data["reviewers"]),
                )
            except ValidationError as exc:
                _errors_into(form, exc)
            else:
                messages.success(request, f"Calibration session “{session.name}” started: each reviewer finds "
                                          "its items in their queue.")
                return redirect("quality:calibration_detail", pk=session.pk)
        return self._render(request, form, status=400)

    def _render(self, request: HttpRequest, form: Any, status: int = 200) -> HttpResponse:
        return render(request, "quality/calibration_list.html",
                      {"sessions": list(calibration_sessions()), "form": form, "section": "calibration"}, status=status)


class CalibrationDetailPage(RoleRequiredMixin, View):
    """A session's results: agreement, accuracy per reviewer, the items with most disagreement."""

    allowed_roles = OVERSIGHT

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        session = CalibrationSession.objects.filter(pk=pk).first()
        if session is None:
            raise Http404("No such calibration session.")
        return render(request, "quality/calibration_detail.html",
                      {"session": session, "r": calibration_results(session), "section": "calibration"})


class GoldItemsPage(RoleRequiredMixin, View):
    """The gold register (officers only: gold answers must never reach reviewers)."""

    allowed_roles = (COMPLIANCE_OFFICER,)

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request, GoldItemForm(), GoldImportForm())

    def post(self, request: HttpRequest) -> HttpResponse:
        if request.POST.get("action") == "import":
            upload = GoldImportForm(request.POST, request.FILES)
            if upload.is_valid():
                result = gold_items_import_csv(actor=request.user, text=upload.cleaned_data["file"])
                if not result.errors:
                    messages.success(request, f"Imported {len(result.created)} gold item(s).")
                    return redirect("quality:gold")
                for line, errors in sorted(result.errors.items()):
                    for field, problems in errors.items():
                        upload.add_error(None, f"Line {line}, {field}: {' '.join(problems)}")
            return self._render(request, GoldItemForm(), upload, status=400)
        form = GoldItemForm(request.POST)
        if form.is_valid():
            try:
                item = gold_item_create(
                    actor=request.user, point=form.point(), input=form.cleaned_data["input"],
                    prediction=form.prediction(), gold_label=form.cleaned_data["gold_label"],
                    note=form.cleaned_data.get("note") or "", source="admin",
                )
            except ValidationError as exc:
                _errors_into(form, exc)
            else:
                messages.success(request, f"Gold item #{item.pk} created.")
                return redirect("quality:gold")
        return self._render(request, form, GoldImportForm(), status=400)

    def _render(self, request: HttpRequest, form: Any, upload: Any, status: int = 200) -> HttpResponse:
        return render(request, "quality/gold.html",
                      {"items": list(gold_items()[:500]), "form": form, "upload": upload, "section": "gold"},
                      status=status)


class ThresholdListPage(RoleRequiredMixin, View):
    """Intervention points and how much ground truth each has for a threshold recommendation."""

    allowed_roles = OVERSIGHT

    def get(self, request: HttpRequest) -> HttpResponse:
        return render(request, "quality/thresholds.html", {"rows": threshold_candidates(), "section": "thresholds"})


# The curve's drawing area (SVG user units).
SVG_W, SVG_H, SVG_PAD_L, SVG_PAD_R, SVG_PAD_T, SVG_PAD_B = 640, 300, 52, 60, 16, 40


def curve_svg(curve: dict[str, Any]) -> dict[str, Any]:
    """Coordinates of the threshold chart: review volume (left axis, 0–100 %) and the error of
    auto-accepted cases (right axis, up to twice the target or the largest error), the target,
    the recommended and the current threshold."""
    width = SVG_W - SVG_PAD_L - SVG_PAD_R
    height = SVG_H - SVG_PAD_T - SVG_PAD_B
    errors = [row["error_rate"] for row in curve["curve"] if row["error_rate"] is not None]
    error_max = max([curve["target_error"] * 2, *errors, 0.01])

    def x(threshold: float) -> float:
        return round(SVG_PAD_L + threshold * width, 1)

    def y(value: float, top: float) -> float:
        return round(SVG_PAD_T + height - (value / top) * height, 1)

    review = " ".join(f"{x(r['threshold'])},{y(r['review_rate'], 1.0)}" for r in curve["curve"]
                      if r["review_rate"] is not None)
    error = " ".join(f"{x(r['threshold'])},{y(r['error_rate'], error_max)}" for r in curve["curve"]
                     if r["error_rate"] is not None)
    ticks_x = [{"x": x(t / 10), "label": f"{t / 10:.1f}"} for t in range(0, 11, 2)]
    ticks_left = [{"y": y(t / 4, 1.0), "label": f"{t * 25} %"} for t in range(5)]
    ticks_right = [{"y": y(error_max * t / 4, error_max), "label": f"{error_max * t / 4 * 100:.1f} %"}
                   for t in range(5)]
    marks = []
    if curve["recommended_threshold"] is not None:
        marks.append({"x": x(curve["recommended_threshold"]), "label": "recommended", "cls": "rec"})
    if curve["current_threshold"] is not None:
        marks.append({"x": x(curve["current_threshold"]), "label": "current", "cls": "cur"})
    return {
        "w": SVG_W, "h": SVG_H, "left": SVG_PAD_L, "right": SVG_W - SVG_PAD_R, "top": SVG_PAD_T,
        "bottom": SVG_H - SVG_PAD_B, "review": review, "error": error,
        "target_y": y(curve["target_error"], error_max), "ticks_x": ticks_x, "ticks_left": ticks_left,
        "ticks_right": ticks_right, "marks": marks,
    }


class ThresholdDetailPage(RoleRequiredMixin, View):
    """The curve of one point, the recommendation, and the officer's confirmation form."""

    roles = {"GET": OVERSIGHT, "POST": (COMPLIANCE_OFFICER,)}

    def _point(self, slug: str, point: str) -> Any:
        return intervention_point_get(system=system_get(slug=slug), slug=point)

    def get(self, request: HttpRequest, slug: str, point: str) -> HttpResponse:
        intervention_point = self._point(slug, point)
        curve = threshold_curve(point=intervention_point)
        initial = {"threshold": curve["recommended_threshold"]} if curve["recommended_threshold"] is not None else {}
        return self._render(request, intervention_point, curve, ThresholdApplyForm(initial=initial))

    def post(self, request: HttpRequest, slug: str, point: str) -> HttpResponse:
        intervention_point = self._point(slug, point)
        form = ThresholdApplyForm(request.POST)
        if form.is_valid():
            try:
                updated = threshold_apply(actor=request.user, point=intervention_point,
                                          threshold=float(form.cleaned_data["threshold"]),
                                          reason=form.cleaned_data["reason"])
            except ValidationError as exc:
                _errors_into(form, exc)
            else:
                messages.success(request, f"Confidence threshold set to {updated.confidence_below:.2f} "
                                          f"(rules version {updated.version}).")
                return redirect("quality:threshold", slug=slug, point=point)
        return self._render(request, intervention_point, threshold_curve(point=intervention_point), form,
                            status=400)

    def _render(self, request: HttpRequest, point: Any, curve: dict[str, Any], form: Any,
                status: int = 200) -> HttpResponse:
        table = [row for row in curve["curve"] if round(row["threshold"] * 100) % 5 == 0]
        return render(request, "quality/threshold_detail.html", {
            "point": point, "curve": curve, "svg": curve_svg(curve), "table": table, "form": form,
            "officer": self.may(request, "POST"), "section": "thresholds",
        }, status=status)
