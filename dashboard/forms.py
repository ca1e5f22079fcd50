"""The dashboard's scope selector (GET): system, period of 7 / 30 / 90 days or custom dates."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms

from dashboard.selectors import KpiScope, last_days_scope
from hitl_portal.days import day_start
from reviews.models import AISystem

PERIODS = [("7", "7 days"), ("30", "30 days"), ("90", "90 days"), ("custom", "Custom")]
DEFAULT_PERIOD = "30"
MAX_CUSTOM_DAYS = 3660


class ScopeForm(forms.Form):
    """Which cases the dashboard shows: one system or all, and whole UTC days (today included)."""

    system = forms.ModelChoiceField(
        queryset=AISystem.objects.order_by("name").only("id", "name", "slug", "kpi_targets"), to_field_name="slug",
        required=False, empty_label="All systems",
    )
    period = forms.ChoiceField(choices=PERIODS, required=False)
    start = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="To (inclusive)", required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data  # what BaseForm.clean returns (its stub says "or None")
        period = data.get("period") or DEFAULT_PERIOD
        if data.get("start") or data.get("end"):
            period = "custom"  # dates typed in choose a custom period, whatever preset was showing
        data["period"] = period
        if period == "custom":
            start, end = data.get("start"), data.get("end")
            if start is None:
                self.add_error("start", "Choose the first day of the period.")
            if end is None:
                self.add_error("end", "Choose the last day of the period.")
            if start and end:
                if end < start:
                    self.add_error("end", "Must not be before the first day.")
                elif (end - start).days + 1 > MAX_CUSTOM_DAYS:
                    self.add_error("start", f"The period may span at most {MAX_CUSTOM_DAYS} days.")
        return data

    def scope(self, *, now: dt.datetime | None = None) -> KpiScope:
        """The chosen scope (the default — all systems, last 30 days — where the input is invalid)."""
        valid = self.is_valid()
        # A valid system choice is kept even when the dates were wrong (cleaned_data holds the valid fields).
        system = self.cleaned_data.get("system")
        data = self.cleaned_data if valid else {}
        period = data.get("period", DEFAULT_PERIOD)
        if period == "custom":
            return KpiScope(start=day_start(data["start"]), end=day_start(data["end"] + dt.timedelta(days=1)),
                            system=system)
        return last_days_scope(int(period), system=system, now=now)
