"""Template filters for KPI figures (see ``dashboard.formatting``)."""

from __future__ import annotations

from django import template

from dashboard import formatting

register = template.Library()

register.filter("pct", formatting.format_percent)
register.filter("pp", formatting.format_pp)
register.filter("duration", formatting.format_duration)
register.filter("count", formatting.format_number)
register.filter("stat", formatting.format_ratio)


@register.filter
def raw(value: object) -> str:
    """The machine value of a figure for ``data-value`` attributes ("" when undefined)."""
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)
