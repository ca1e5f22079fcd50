"""The portal's template filters for figures (see ``hitl_portal.formatting``), shared by every app's pages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import template

from hitl_portal import formatting

register = template.Library()


def _figure(function: Callable[..., str]) -> Callable[..., str]:
    """Templates hand over "" for a missing value and strings for numbers: normalise before formatting."""

    # One optional argument (the digits), spelt out: Django reads a filter's arity from its signature.
    def wrapped(value: Any, digits: Any = None) -> str:
        number = None if value is None or value == "" else float(value)
        return function(number) if digits is None else function(number, int(digits))

    wrapped.__name__ = function.__name__
    return wrapped


register.filter("pct", _figure(formatting.format_percent))
register.filter("pp", _figure(formatting.format_pp))
register.filter("pp_spread", _figure(formatting.format_spread_pp))
register.filter("ratio", _figure(formatting.format_ratio))
register.filter("duration", _figure(formatting.format_duration))
register.filter("count", _figure(formatting.format_number))
register.filter("seconds", _figure(formatting.format_seconds))
register.filter("bar_width", _figure(formatting.bar_width))


@register.filter
def raw(value: object) -> str:
    """The machine value of a figure for ``data-value`` attributes ("" when undefined)."""
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)
