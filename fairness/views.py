"""Pages of the bias audits: the list (per system), the request form, an audit's results.

Reads go through ``fairness.selectors``, writes through ``fairness.services``.
Compliance officers and managers (and admins) may use every page.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views import View

from fairness.forms import BiasAuditRequestForm
from fairness.metrics import FOUR_FIFTHS
from fairness.models import AuditStatus
from fairness.selectors import audit_get, audit_representation, audits_visible
from fairness.services import bias_audit_request
from hitl_portal.permissions import RoleRequiredMixin
from hitl_portal.roles import COMPLIANCE_OFFICER, MANAGER
from reviews.models import AISystem

OVERSIGHT = (COMPLIANCE_OFFICER, MANAGER)
PAGE_SIZE = 50
# The metrics shown side by side, with the threshold each is held to.
METRIC_ROWS = (
    ("disparate_impact_ratio", "Disparate impact ratio", "disparate_impact_min", "min", "ratio"),
    ("demographic_parity_difference", "Demographic parity difference", "demographic_parity_max", "max", "pp"),
    ("equalized_odds_difference", "Equalized odds difference", "equalized_odds_max", "max", "pp"),
    ("tpr_difference", "TPR spread", None, None, "pp"),
    ("fpr_difference", "FPR spread", None, None, "pp"),
)


class BiasAuditListPage(RoleRequiredMixin, View):
    allowed_roles = OVERSIGHT

    def get(self, request: HttpRequest) -> HttpResponse:
        slug = request.GET.get("system", "")
        system = AISystem.objects.filter(slug=slug).first() if slug and "\x00" not in slug else None
        audits = audits_visible(system_slug=system.slug if system else None)
        page = Paginator(audits, PAGE_SIZE).get_page(request.GET.get("page"))
        rows = [audit_representation(audit) for audit in page]
        return render(request, "fairness/list.html", {
            "rows": rows,
            "page": page,
            "systems": AISystem.objects.order_by("name"),
            "system": system,
            "unknown_system": bool(slug) and system is None,
            "auto_refresh": any(row["status"] in (AuditStatus.PENDING, AuditStatus.RUNNING) for row in rows),
        })


class BiasAuditRequestPage(RoleRequiredMixin, View):
    allowed_roles = OVERSIGHT

    def get(self, request: HttpRequest) -> HttpResponse:
        initial: dict[str, Any] = {}
        system = AISystem.objects.filter(slug=request.GET.get("system", "").replace("\x00", "")).first()
        if system is not None:
            initial["system"] = system
        return self._render(request, BiasAuditRequestForm(initial=initial))

    def post(self, request: HttpRequest) -> HttpResponse:
        form = BiasAuditRequestForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                audit = bias_audit_request(
                    actor=request.user,
                    system=data["system"],
                    attribute=data["attribute"],
                    period_from=_utc(data["period_from"]),
                    period_to=_utc(data["period_to"]),
                )
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    target = {"from": "period_from", "to": "period_to"}.get(field, field)
                    form.add_error(target if target in form.fields else None, errors)
            else:
                messages.success(request, f"Bias audit #{audit.pk} requested: it runs in the background.")
                return redirect("fairness:detail", pk=audit.pk)
        return self._render(request, form, status=400)

    def _render(self, request: HttpRequest, form: BiasAuditRequestForm, status: int = 200) -> HttpResponse:
        return render(request, "fairness/form.html", {"form": form}, status=status)


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    """Form times are UTC (the portal shows UTC everywhere), whatever the server's zone."""
    if moment is None:
        return None
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


class BiasAuditDetailPage(RoleRequiredMixin, View):
    allowed_roles = OVERSIGHT

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        audit = audit_get(pk)
        if audit is None:
            raise Http404("No such bias audit.")
        data = audit_representation(audit)
        metrics = data["metrics"]
        metric_rows = []
        for key, label, threshold_key, bound, style in METRIC_ROWS:
            threshold = audit.thresholds.get(threshold_key) if threshold_key else None
            row: dict[str, Any] = {"label": label, "style": style, "threshold": threshold, "bound": bound, "cells": []}
            for kind in ("ai", "final"):
                value = (metrics.get(kind) or {}).get(key)
                breached = any(b["labels"] == kind and b["metric"] == key for b in data["breaches"])
                row["cells"].append({"value": value, "breached": breached})
            metric_rows.append(row)
        return render(request, "fairness/detail.html", {
            "audit": audit,
            "a": data,
            "metric_rows": metric_rows,
            "four_fifths": float(FOUR_FIFTHS),
            "verdicts": [(kind, (metrics.get(kind) or {}).get("four_fifths_rule"),
                          (metrics.get(kind) or {}).get("disparate_impact_ratio")) for kind in ("ai", "final")],
            "open": audit.status in (AuditStatus.PENDING, AuditStatus.RUNNING),
        })
