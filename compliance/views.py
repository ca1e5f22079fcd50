"""Pages of the compliance workspace: system registry, classification wizard, obligations board,
FRIA, dossier, regulatory calendar and requirements catalog.

Views stay thin: reads through ``compliance.selectors`` and ``reviews.selectors``,
every change through the services (which write the audit events). Compliance
officers (and admins) work here; managers read the registry, boards, FRIA and
calendar; reviewers and integrations are refused (403) by ``RoleRequiredMixin``.
"""

from __future__ import annotations

import os
from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views import View

from compliance import forms as f
from compliance.classification import (
    ANNEX_III_POINTS,
    SCOPE_EXCLUSIONS,
    Answers,
    SystemProfile,
    classify,
    describe_conditions,
    requirement_applies,
)
from compliance.models import Framework, ObligationEvidence, ObligationStatus
from compliance.selectors import evidence as portal
from compliance.selectors.catalog import calendar, current_catalog, requirement_list
from compliance.selectors.fria import fria_get, fria_required, fria_requirement, fria_versions
from compliance.selectors.obligations import (
    obligation_get_by_pk,
    obligation_list,
    obligations_progress,
    pending_requirements,
    progress_by_system,
)
from compliance.services.classification import system_classify
from compliance.services.dossier import dossier_generate
from compliance.services.fria import fria_save
from compliance.services.incident_report import incident_report_generate
from compliance.services.obligations import NewEvidence, obligation_update, obligations_sync
from hitl_portal.permissions import RoleRequiredMixin, may_access
from hitl_portal.roles import COMPLIANCE_OFFICER, MANAGER
from incidents.models import Incident
from incidents.selectors import incident_clock, incident_get
from reviews.models import AISystem, InterventionPoint
from reviews.selectors.systems import system_get, system_list
from reviews.services.systems import system_create, system_halt, system_update

READERS = (COMPLIANCE_OFFICER, MANAGER)
OFFICERS = (COMPLIANCE_OFFICER,)
SERIOUS_KINDS = ("death", "critical_infrastructure", "widespread_infringement", "serious_harm")


class ReaderPage(RoleRequiredMixin, View):
    """Compliance officers and managers (read-only for managers); admins pass."""

    allowed_roles = READERS


class OfficerPage(RoleRequiredMixin, View):
    allowed_roles = OFFICERS


def _is_officer(request: HttpRequest) -> bool:
    """Whether to offer the officers' workspace actions: asked of the permission layer, not a role list."""
    return may_access(request.user, "compliance:system_create")


def _apply_errors(form: Any, exc: ValidationError, aliases: dict[str, str] | None = None) -> None:
    """Show a service's field errors next to the form's fields (the rest above the form)."""
    aliases = aliases or {}
    if not hasattr(exc, "error_dict"):
        for message in exc.messages:
            form.add_error(None, message)
        return
    for field, errors in exc.message_dict.items():
        name = aliases.get(field, field)
        form.add_error(name if name in form.fields else None, errors if name in form.fields
                       else [f"{field}: {e}" for e in errors])


# --- System registry ----------------------------------------------------------------------------


class SystemListView(ReaderPage):
    def get(self, request: HttpRequest) -> HttpResponse:
        progress = progress_by_system()
        systems = list(system_list())
        open_incidents = {
            row["system_id"]: row["n"]
            for row in Incident.objects.exclude(status="closed").values("system_id").order_by().annotate(n=Count("id"))
        }
        rows = [{"system": s, "progress": progress.get(s.pk), "open_incidents": open_incidents.get(s.pk, 0)}
                for s in systems]
        return render(request, "compliance/system_list.html", {"rows": rows, "can_edit": _is_officer(request)})


class SystemCreateView(OfficerPage):
    def get(self, request: HttpRequest) -> HttpResponse:
        return render(request, "compliance/system_form.html", {"form": f.SystemForm(), "creating": True})

    def post(self, request: HttpRequest) -> HttpResponse:
        form = f.SystemForm(request.POST)
        if form.is_valid():
            data = form.service_fields()
            try:
                system = system_create(actor=request.user, **data)
            except ValidationError as exc:
                _apply_errors(form, exc)
            else:
                messages.success(request, f"{system.name} registered. Next: classify it.")
                return redirect("compliance:classify", slug=system.slug)
        return render(request, "compliance/system_form.html", {"form": form, "creating": True}, status=400)


class SystemEditView(OfficerPage):
    def get(self, request: HttpRequest, slug: str) -> HttpResponse:
        system = system_get(slug=slug)
        form = f.SystemForm(initial=f.SystemForm.initial_for(system), editing=True)
        return render(request, "compliance/system_form.html", {"form": form, "system": system})

    def post(self, request: HttpRequest, slug: str) -> HttpResponse:
        system = system_get(slug=slug)
        form = f.SystemForm(request.POST, initial=f.SystemForm.initial_for(system), editing=True)
        if form.is_valid():
            try:
                system = system_update(actor=request.user, system=system, changes=form.service_fields(),
                                       reason=form.cleaned_data.get("reason", ""))
            except ValidationError as exc:
                _apply_errors(form, exc)
            else:
                # A changed role, public-body status or Annex III point changes what applies.
                sync = obligations_sync(actor=request.user, system=system) if system.obligations.exists() else None
                note = f" Obligations: {len(sync.created)} added, {len(sync.retired)} retired." if sync and \
                    sync.changed else ""
                messages.success(request, f"{system.name} saved.{note}")
                return redirect("compliance:system_detail", slug=system.slug)
        return render(request, "compliance/system_form.html", {"form": form, "system": system}, status=400)


class SystemDetailView(ReaderPage):
    def get(self, request: HttpRequest, slug: str) -> HttpResponse:
        system = system_get(slug=slug)
        now = timezone.now()
        incidents = [{"incident": i, "clock": incident_clock(i, now=now), "serious": i.kind in SERIOUS_KINDS}
                     for i in Incident.objects.filter(system=system).order_by("-aware_at")[:50]]
        rationale = system.classification_rationale or {}
        context = {
            "system": system,
            "rationale": rationale,
            "progress": obligations_progress(system=system),
            "fria_required": fria_required(system),
            "fria_latest": fria_versions(system=system).first(),
            "points": InterventionPoint.objects.filter(system=system).order_by("slug"),
            "incidents": incidents,
            "incident_obligations": [o for o in obligation_list(system=system, include_retired=False)
                                     if o.requirement.ref in ("AIA-26.5", "AIA-72.1", "AIA-73.1")],
            "pending": len(pending_requirements(system=system)) if system.risk_tier else 0,
            "can_edit": _is_officer(request),
            "history": system.history.select_related("history_user").order_by("-history_date")[:10],
        }
        return render(request, "compliance/system_detail.html", context)


class SuspendView(OfficerPage):
    """Art. 26(5): on a serious incident the deployer suspends use — here in one step (the stop button)."""

    def post(self, request: HttpRequest, slug: str) -> HttpResponse:
        system = system_get(slug=slug)
        form = f.SuspendForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Choose the incident that makes you suspend the system.")
            return redirect("compliance:system_detail", slug=slug)
        incident = Incident.objects.filter(system=system, pk=form.cleaned_data["incident"]).first()
        if incident is None:
            raise Http404("No such incident of this system.")
        reason = form.cleaned_data.get("reason") or (
            f"Suspended after incident #{incident.pk} ({incident.get_kind_display()}), Art. 26(5).")
        try:
            system_halt(actor=request.user, system=system, reason=reason)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, f"{system.name} is halted: every case now goes to a person. {reason}")
        return redirect("compliance:system_detail", slug=slug)


# --- Classification wizard --------------------------------------------------------------------------

STEPS: list[tuple[str, str, type, str]] = [
    ("scope", "Scope", f.ScopeStepForm, "Art. 2"),
    ("prohibited", "Prohibited practices", f.ProhibitedStepForm, "Art. 5"),
    ("high-risk", "High-risk areas", f.HighRiskStepForm, "Art. 6(1), Annex I, Art. 6(2), Annex III"),
    ("exception", "Art. 6(3) exception", f.ExceptionStepForm, "Art. 6(3)"),
    ("transparency", "Transparency", f.TransparencyStepForm, "Art. 50"),
    ("summary", "Summary", f.ClassificationConfirmForm, ""),
]
STEP_KEYS = [key for key, *_ in STEPS]
STEP_FIELDS = {
    "scope": ["scope_exclusions"],
    "prohibited": ["prohibited_practices"],
    "high-risk": ["annex_i_product", "annex_iii"],
    "exception": ["exception_6_3", "profiling"],
    "transparency": ["art50"],
}
DEFAULT_ANSWERS: dict[str, Any] = {
    "scope_exclusions": [], "prohibited_practices": [], "annex_i_product": False, "annex_iii": [],
    "exception_6_3": [], "profiling": False, "art50": [],
}


def _session_key(slug: str) -> str:
    return f"compliance_classify:{slug}"


def _route(answers: dict[str, Any]) -> list[str]:
    """The steps this set of answers walks through (the decision stops early where the regulation does)."""
    route = ["scope"]
    if set(answers.get("scope_exclusions") or []) - {"open_source"}:
        return [*route, "summary"]
    route.append("prohibited")
    if answers.get("prohibited_practices"):
        return [*route, "summary"]
    route.append("high-risk")
    if answers.get("annex_iii"):
        route.append("exception")
    return [*route, "transparency", "summary"]


def _effective(answers: dict[str, Any]) -> dict[str, Any]:
    """Only the answers of the steps actually walked (a changed early answer drops stale later ones)."""
    visited = _route(answers)
    result = dict(DEFAULT_ANSWERS)
    for step in visited:
        for name in STEP_FIELDS.get(step, []):
            result[name] = answers.get(name, DEFAULT_ANSWERS[name])
    return result


def _initial_answers(system: AISystem) -> dict[str, Any]:
    stored = (system.classification_rationale or {}).get("answers")
    if stored:
        return {**DEFAULT_ANSWERS, **stored}
    answers = dict(DEFAULT_ANSWERS)
    if system.annex_iii_area in ANNEX_III_POINTS:
        answers["annex_iii"] = [system.annex_iii_area]
    return answers


class ClassifyStartView(OfficerPage):
    def get(self, request: HttpRequest, slug: str) -> HttpResponse:
        system = system_get(slug=slug)
        request.session[_session_key(slug)] = _initial_answers(system)
        return redirect("compliance:classify_step", slug=slug, step="scope")


class ClassifyStepView(OfficerPage):
    """One question page of the wizard; answers live in the session until the summary is confirmed."""

    def _answers(self, request: HttpRequest, system: AISystem) -> dict[str, Any]:
        answers = request.session.get(_session_key(system.slug))
        if answers is None:
            answers = _initial_answers(system)
            request.session[_session_key(system.slug)] = answers
        return answers

    def _context(self, system: AISystem, step: str, form: Any, answers: dict[str, Any]) -> dict[str, Any]:
        route = _route(answers)
        position = route.index(step) if step in route else STEP_KEYS.index(step)
        titles = {key: (title, refs) for key, title, _, refs in STEPS}
        context: dict[str, Any] = {
            "system": system, "step": step, "title": titles[step][0], "refs": titles[step][1], "form": form,
            "route": [(key, titles[key][0]) for key in route], "position": position + 1,
            "back": route[position - 1] if step in route and position > 0 else None,
            "scope_labels": SCOPE_EXCLUSIONS,
        }
        if step == "high-risk":
            widgets = {w.data["value"]: w for w in form["annex_iii"].subwidgets}
            context["annex_groups"] = [(area, title, [widgets[p] for p in points])
                                       for area, title, points in f.HighRiskStepForm.grouped()]
        if step == "summary":
            context.update(self._preview(system, answers))
        return context

    def _preview(self, system: AISystem, answers: dict[str, Any]) -> dict[str, Any]:
        result = classify(Answers.from_mapping(_effective(answers)))
        profile = SystemProfile(
            tier=result.tier, role=system.role, annex_iii_points=frozenset(result.annex_iii_points),
            annex_i=result.annex_i, public_body=system.is_public_body, exception_6_3=result.exception_6_3_applied,
            art50=frozenset(result.art50_duties), art5=frozenset(result.prohibited_practices),
            in_scope=result.in_scope,
        )
        requirements = list(requirement_list())
        applicable = [r for r in requirements if requirement_applies(r, profile)]
        fria_row = fria_requirement()
        return {
            "result": result,
            "preview_obligations": len(applicable),
            "preview_eu": sum(1 for r in applicable if r.framework == Framework.EU_AI_ACT),
            "preview_fria": fria_row is not None and requirement_applies(fria_row, profile),
        }

    def get(self, request: HttpRequest, slug: str, step: str) -> HttpResponse:
        system = system_get(slug=slug)
        if step not in STEP_KEYS:
            raise Http404("No such step.")
        answers = self._answers(request, system)
        form_class = dict((k, c) for k, _, c, _ in STEPS)[step]
        form = form_class(initial={name: answers.get(name) for name in STEP_FIELDS.get(step, [])})
        return render(request, "compliance/classify_step.html", self._context(system, step, form, answers))

    def post(self, request: HttpRequest, slug: str, step: str) -> HttpResponse:
        system = system_get(slug=slug)
        if step not in STEP_KEYS:
            raise Http404("No such step.")
        answers = dict(self._answers(request, system))
        form_class = dict((k, c) for k, _, c, _ in STEPS)[step]
        form = form_class(request.POST)
        if not form.is_valid():
            return render(request, "compliance/classify_step.html", self._context(system, step, form, answers),
                          status=400)
        for name in STEP_FIELDS.get(step, []):
            answers[name] = form.cleaned_data[name]
        request.session[_session_key(slug)] = answers
        route = _route(answers)
        index = route.index(step) if step in route else 0
        if request.POST.get("direction") == "back":
            return redirect("compliance:classify_step", slug=slug, step=route[max(index - 1, 0)])
        if step != "summary":
            return redirect("compliance:classify_step", slug=slug, step=route[min(index + 1, len(route) - 1)])
        try:
            system, result, sync = system_classify(actor=request.user, system=system, answers=_effective(answers),
                                                   reason=form.cleaned_data.get("reason", ""))
        except ValidationError as exc:
            _apply_errors(form, exc)
            return render(request, "compliance/classify_step.html", self._context(system, step, form, answers),
                          status=400)
        request.session.pop(_session_key(slug), None)
        extra = f" {len(sync.created)} obligation(s) generated." if sync.created else ""
        if sync.retired:
            extra += f" {len(sync.retired)} no longer apply."
        if result.outcome == "prohibited":
            messages.error(request, f"Classified: {result.summary}. The system is blocked; its cases are refused.")
        else:
            messages.success(request, f"Classified: {result.summary}.{extra}")
        return redirect("compliance:system_detail", slug=slug)


# --- Obligations ---------------------------------------------------------------------------------------


def _owner_names() -> list[str]:
    User = get_user_model()
    users = User.objects.filter(is_active=True).filter(
        Q(is_superuser=True) | Q(groups__name__in=[COMPLIANCE_OFFICER, MANAGER])
    ).distinct().order_by("username")
    return [u.get_username() for u in users]


class ObligationBoardView(ReaderPage):
    """All obligations of a system by article / category, filterable by framework and status,
    with the portal's live evidence beside each."""

    def get(self, request: HttpRequest, slug: str) -> HttpResponse:
        system = system_get(slug=slug)
        framework = request.GET.get("framework", "")
        if framework not in ("", *Framework.values):
            framework = ""
        status = request.GET.get("status", "")
        if status not in ("", *ObligationStatus.values):
            status = ""
        rows = list(obligation_list(system=system))
        if framework:
            rows = [o for o in rows if o.requirement.framework == framework]
        current = [o for o in rows if o.applicable]
        counts = {value: sum(1 for o in current if o.status == value) for value in ObligationStatus.values}
        shown = [o for o in current if not status or o.status == status]
        cache = portal.EvidenceCache(system)
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for o in shown:
            key = (o.requirement.get_framework_display(), o.requirement.group)
            groups.setdefault(key, []).append({"obligation": o, "portal": cache.get(o.requirement.evidence_kind)})
        context = {
            "system": system, "groups": [(fw, group, items) for (fw, group), items in groups.items()],
            "framework": framework, "frameworks": Framework.choices, "status": status,
            "statuses": [(value, label, counts[value]) for value, label in ObligationStatus.choices],
            "total": len(current), "retired": [o for o in rows if not o.applicable],
            "progress": obligations_progress(system=system, framework=framework),
            "pending": pending_requirements(system=system) if system.risk_tier else [],
            "can_edit": _is_officer(request), "catalog": current_catalog(), "today": timezone.localdate(),
        }
        return render(request, "compliance/obligations.html", context)


class ObligationSyncView(OfficerPage):
    def post(self, request: HttpRequest, slug: str) -> HttpResponse:
        system = system_get(slug=slug)
        result = obligations_sync(actor=request.user, system=system)
        if result.changed:
            messages.success(request, f"Obligations updated: {len(result.created)} added, {len(result.retired)} "
                                      f"retired, {len(result.reopened)} reopened.")
        else:
            messages.info(request, "Obligations already match the catalog.")
        return redirect("compliance:obligations", slug=slug)


class ObligationEditView(OfficerPage):
    def _context(self, system: AISystem, obligation: Any, form: Any) -> dict[str, Any]:
        return {"system": system, "obligation": obligation, "form": form,
                "portal": portal.portal_evidence(system, obligation.requirement.evidence_kind)
                if obligation.requirement.evidence_kind else None}

    def get(self, request: HttpRequest, slug: str, pk: int) -> HttpResponse:
        system = system_get(slug=slug)
        obligation = obligation_get_by_pk(system=system, pk=pk)
        form = f.ObligationForm(owners=_owner_names(), initial={
            "status": obligation.status, "owner": obligation.owner.get_username() if obligation.owner else "",
            "due": obligation.due_date, "note": obligation.note,
        })
        return render(request, "compliance/obligation_edit.html", self._context(system, obligation, form))

    def post(self, request: HttpRequest, slug: str, pk: int) -> HttpResponse:
        system = system_get(slug=slug)
        obligation = obligation_get_by_pk(system=system, pk=pk)
        form = f.ObligationForm(request.POST, request.FILES, owners=_owner_names())
        if form.is_valid():
            data = form.cleaned_data
            evidence = []
            if data.get("evidence_url"):
                evidence.append(NewEvidence(kind="link", url=data["evidence_url"], title=data["evidence_title"]))
            if data.get("evidence_file"):
                evidence.append(NewEvidence(kind="file", file=data["evidence_file"],
                                            title="" if data.get("evidence_url") else data["evidence_title"]))
            if data.get("capture_portal_evidence"):
                evidence.append(NewEvidence(kind="portal"))
            try:
                obligation_update(
                    actor=request.user, obligation=obligation, status=data["status"], owner=data["owner"] or None,
                    due_date=data["due"], note=data["note"], add_evidence=evidence, reason=data["reason"],
                )
            except ValidationError as exc:
                _apply_errors(form, exc, {"capture_portal_evidence": "capture_portal_evidence"})
            else:
                messages.success(request, f"{obligation.requirement.ref} saved.")
                return redirect(reverse("compliance:obligations", args=[slug]) + f"#ob-{obligation.pk}")
        return render(request, "compliance/obligation_edit.html", self._context(system, obligation, form),
                      status=400)


class EvidenceDownloadView(ReaderPage):
    """An uploaded evidence file, only through this permission check (media is not served publicly)."""

    def get(self, request: HttpRequest, slug: str, pk: int) -> FileResponse:
        system = system_get(slug=slug)
        evidence = ObligationEvidence.objects.filter(pk=pk, obligation__system=system, kind="file").first()
        if evidence is None or not evidence.file.name:  # a FieldFile is falsy exactly when it has no name
            raise Http404("No such evidence file.")
        try:
            handle = evidence.file.open("rb")
        except FileNotFoundError as exc:
            raise Http404("The evidence file is missing from storage.") from exc
        return FileResponse(handle, as_attachment=True, filename=os.path.basename(evidence.file.name))


# --- FRIA ----------------------------------------------------------------------------------------------


def _oversight_text(system: AISystem) -> str:
    """A starting point for FRIA (e): the intervention points as configured."""
    data = portal.intervention_points(system)["data"]["points"]
    if not data:
        return ""
    lines = []
    for p in data:
        rules = []
        if p["confidence_below"] is not None:
            rules.append(f"confidence below {p['confidence_below']}")
        if p["always_review_labels"]:
            rules.append("always for " + ", ".join(p["always_review_labels"]))
        rules += [f"{r.get('field')} {r.get('op')} {r.get('value')}" for r in p["high_stakes"]]
        if p["random_sample_rate"]:
            rules.append(f"a random sample of {p['random_sample_rate'] * 100:.0f} %")
        lines.append(f"{p['name']}: reviewed by {p['reviewers_required']} qualified person(s) when "
                     + (", or ".join(rules) or "the stage requires it") + ".")
    lines.append("Reviewers can approve, override or escalate; the system can be halted at any time.")
    return "\n".join(lines)


class FriaView(ReaderPage):
    roles = {"GET": READERS, "POST": OFFICERS}

    def get(self, request: HttpRequest, slug: str) -> HttpResponse:
        system = system_get(slug=slug)
        versions = list(fria_versions(system=system))
        latest = versions[0] if versions else None
        initial: dict[str, Any] = {}
        if latest is not None:
            initial = {name: getattr(latest, name) for name in (*f.FriaForm.base_fields,) if hasattr(latest, name)}
            initial["change_summary"] = ""
        else:
            initial = {"human_oversight": _oversight_text(system)}
        form = f.FriaForm(initial=initial) if _is_officer(request) else None
        return render(request, "compliance/fria.html", {
            "system": system, "versions": versions, "latest": latest, "form": form,
            "required": fria_required(system), "can_edit": _is_officer(request),
        })

    def post(self, request: HttpRequest, slug: str) -> HttpResponse:
        system = system_get(slug=slug)
        form = f.FriaForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                fria = fria_save(actor=request.user, system=system, contents=form.contents(),
                                 first_use_on=data["first_use_on"], authority_notified_on=data["authority_notified_on"],
                                 change_summary=data["change_summary"])
            except ValidationError as exc:
                _apply_errors(form, exc)
            else:
                messages.success(request, f"FRIA version {fria.version} saved.")
                return redirect("compliance:fria", slug=slug)
        versions = list(fria_versions(system=system))
        return render(request, "compliance/fria.html", {
            "system": system, "versions": versions, "latest": versions[0] if versions else None, "form": form,
            "required": fria_required(system), "can_edit": True,
        }, status=400)


class FriaVersionView(ReaderPage):
    def get(self, request: HttpRequest, slug: str, version: int) -> HttpResponse:
        system = system_get(slug=slug)
        return render(request, "compliance/fria_version.html", {
            "system": system, "fria": fria_get(system=system, version=version),
        })


# --- Dossier -------------------------------------------------------------------------------------------


class DossierPageView(OfficerPage):
    def get(self, request: HttpRequest, slug: str) -> HttpResponse:
        system = system_get(slug=slug)
        return render(request, "compliance/dossier_page.html", {
            "system": system, "generated": portal.dossier(system)["data"]["generated"],
            "progress": obligations_progress(system=system),
        })


class DossierDownloadView(OfficerPage):
    fmt = "pdf"

    def get(self, request: HttpRequest, slug: str) -> HttpResponse:
        system = system_get(slug=slug)
        dossier = dossier_generate(actor=request.user, system=system, fmt=self.fmt)
        response = HttpResponse(dossier.content, content_type=dossier.content_type)
        disposition = "attachment" if self.fmt == "pdf" else "inline"
        response["Content-Disposition"] = f'{disposition}; filename="{dossier.filename}"'
        response["X-Content-SHA256"] = dossier.sha256
        return response


class IncidentReportDownloadView(OfficerPage):
    """The Art. 73 report draft of one incident as PDF (compliance officers; generation audited with its hash)."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        incident = incident_get(user=request.user, pk=pk)
        report = incident_report_generate(actor=request.user, incident=incident)
        response = HttpResponse(report.content, content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{report.filename}"'
        response["X-Content-SHA256"] = report.sha256
        return response


# --- Calendar and catalog ------------------------------------------------------------------------------


class CalendarView(ReaderPage):
    def get(self, request: HttpRequest) -> HttpResponse:
        catalog = current_catalog()
        return render(request, "compliance/calendar.html", {
            "catalog": catalog, "entries": calendar(catalog=catalog), "today": timezone.localdate(),
        })


class CatalogView(ReaderPage):
    def get(self, request: HttpRequest) -> HttpResponse:
        framework = request.GET.get("framework", "")
        if framework not in ("", *Framework.values):
            framework = ""
        catalog = current_catalog()
        return render(request, "compliance/catalog.html", {
            "catalog": catalog,
            "rows": [(r, describe_conditions(r.conditions)) for r in requirement_list(catalog=catalog,
                                                                                      framework=framework)],
            "framework": framework, "frameworks": Framework.choices,
        })
