"""How figures read on every page: fractions as %, differences as percentage points, times in units.

The API and the CSV keep fractions and seconds; only pages format (through the
``portal_format`` template filters). ``None`` (undefined) reads as an em dash.
"""

from __future__ import annotations

DASH = "—"


def format_percent(value: float | None, digits: int = 1) -> str:
    """0.853 → "85.3 %"."""
    if value is None:
        return DASH
    return f"{value * 100:.{digits}f} %"


def format_pp(value: float | None, digits: int = 1) -> str:
    """A difference of fractions in percentage points: 0.042 → "+4.2 pp"."""
    if value is None:
        return DASH
    points = value * 100
    if round(points, digits) == 0:
        return f"{0:.{digits}f} pp"
    return f"{points:+.{digits}f} pp"


def format_duration(seconds: float | None) -> str:
    """Seconds in the largest sensible unit: 42 → "42 s", 210 → "3.5 min", 7560 → "2.1 h"."""
    if seconds is None:
        return DASH
    if seconds < 10:
        return f"{seconds:.1f} s".replace(".0 s", " s")
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min".replace(".0 min", " min")
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h".replace(".0 h", " h")
    return f"{seconds / 86400:.1f} d".replace(".0 d", " d")


def format_number(value: float | None) -> str:
    """Counts with thousands separators; non-integers with one decimal."""
    if value is None:
        return DASH
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}"


def format_ratio(value: float | None, digits: int = 2) -> str:
    """A statistic such as κ or α: 0.4 → "0.40"."""
    if value is None:
        return DASH
    return f"{value:.{digits}f}"


def format_spread_pp(value: float | None, digits: int = 1) -> str:
    """A spread between groups (max − min, never negative) in percentage points: 0.3 → "30.0 pp"."""
    if value is None:
        return DASH
    return f"{value * 100:.{digits}f} pp"


def format_seconds(value: float | None) -> str:
    """A short time in seconds with one decimal: 2.25 → "2.2 s"."""
    if value is None:
        return DASH
    return f"{value:.1f} s"


def bar_width(value: float | None) -> str:
    """A fraction as a CSS width for bars, clamped to 0–100 %."""
    if value is None:
        return "0%"
    return f"{max(0.0, min(1.0, value)) * 100:.1f}%"
