"""Template filters of the bias-audit pages: fractions shown as % and differences as percentage points."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()
DASH = "—"


@register.filter
def pct(value: Any, digits: int = 1) -> str:
    """A fraction as a percentage (0.412 → "41.2 %"); undefined → a dash."""
    if value is None or value == "":
        return DASH
    return f"{float(value) * 100:.{int(digits)}f} %"


@register.filter
def pp(value: Any, digits: int = 1) -> str:
    """A difference of two fractions in percentage points (0.123 → "12.3 pp")."""
    if value is None or value == "":
        return DASH
    return f"{float(value) * 100:.{int(digits)}f} pp"


@register.filter
def ratio(value: Any, digits: int = 2) -> str:
    """A ratio such as the disparate impact ratio (0.8333 → "0.83")."""
    if value is None or value == "":
        return DASH
    return f"{float(value):.{int(digits)}f}"


@register.filter
def bar_width(value: Any) -> str:
    """A fraction as a CSS width for the per-group bars (clamped to 0–100 %)."""
    if value is None or value == "":
        return "0%"
    return f"{max(0.0, min(1.0, float(value))) * 100:.1f}%"
