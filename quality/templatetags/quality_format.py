"""Template filters of the quality pages: fractions shown as % and percentage points."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()

DASH = "—"


@register.filter
def pct(value: Any, digits: int = 1) -> str:
    """A fraction as a percentage (0.853 → "85.3 %"); a dash when undefined."""
    if value is None or value == "":
        return DASH
    return f"{float(value) * 100:.{int(digits)}f} %"


@register.filter
def pp(value: Any) -> str:
    """A difference of fractions in percentage points, signed (0.12 → "+12.0 pp")."""
    if value is None or value == "":
        return DASH
    return f"{float(value) * 100:+.1f} pp"


@register.filter
def stat(value: Any) -> str:
    """A κ or α with three decimals."""
    if value is None or value == "":
        return DASH
    return f"{float(value):.3f}"


@register.filter
def seconds(value: Any) -> str:
    if value is None or value == "":
        return DASH
    return f"{float(value):.1f} s"
