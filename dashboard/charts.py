"""Server-rendered SVG charts for the dashboard (no JavaScript library, nothing from a CDN).

Each chart is a ``<figure>`` holding an inline ``<svg>`` (scaled by CSS to its
column) and an HTML legend. Every point and bar carries a ``<title>``, so the
browser shows its exact value on hover; a missing value (``None``: undefined
that day) leaves a gap in a line rather than a fake zero.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from hitl_portal.formatting import format_duration, format_number, format_percent

WIDTH, HEIGHT = 560, 210
LEFT, RIGHT, TOP, BOTTOM = 56, 14, 12, 26
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
MAX_X_LABELS = 7


@dataclass(frozen=True)
class Series:
    """One line (or one stacked bar segment): a name, a colour class, one value per day."""

    name: str
    css: str
    values: Sequence[float | None]


def _nice_step(span: float, ticks: int = 4, *, integer: bool = False) -> float:
    raw = span / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    factors = (1, 2, 5, 10) if integer else (1, 2, 2.5, 5, 10)
    for factor in factors:
        if raw <= factor * magnitude:
            step = factor * magnitude
            return max(1.0, step) if integer else step
    return 10 * magnitude


def _nice_max(value: float, *, integer: bool = False) -> tuple[float, float]:
    """A rounded axis maximum ≥ ``value`` and its tick step (whole-number steps for counts)."""
    if value <= 0:
        return (1.0, 1.0) if integer else (1.0, 0.25)
    step = _nice_step(value, integer=integer)
    return step * math.ceil(value / step - 1e-9), step


DURATION_UNITS = ((1, "s"), (60, "min"), (3600, "h"), (86400, "d"))


def _duration_axis(value: float) -> tuple[float, float, Callable[[float], str]]:
    """Axis maximum, step and tick labels for seconds, in round seconds, minutes, hours or days."""
    for unit, name in DURATION_UNITS:
        if value / unit <= 120 or unit == 86400:
            top, step = _nice_max(value / unit)
            return top * unit, step * unit, lambda v, unit=unit, name=name: f"{v / unit:g} {name}"
    raise AssertionError("unreachable")


def _num(value: float) -> str:
    """A coordinate to a tenth of a user unit, without a trailing ".0" (the charts repeat thousands of them)."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _tenths(value: float) -> int:
    """A coordinate in whole tenths, rounded as ``_num`` rounds it (the relative path steps add up exactly)."""
    return int(f"{value:.1f}".replace(".", ""))


def _x(index: int, count: int) -> float:
    if count <= 1:
        return LEFT + PLOT_W / 2
    return LEFT + PLOT_W * index / (count - 1)


def _y(value: float, top: float, bottom: float = 0.0) -> float:
    span = top - bottom or 1.0
    return TOP + PLOT_H * (1 - (value - bottom) / span)


@functools.lru_cache(maxsize=1024)
def _day_label(day: dt.date) -> str:
    # Escaped once: every point and bar title of the seven charts repeats its day's label.
    return escape(f"{day:%b} {day.day}")


def _frame(key: str, title: str, days: Sequence[dt.date], top: float, step: float,
           tick: Callable[[float], str], *, bar_slots: bool = False) -> list[str]:
    parts = [
        f'<svg class="chart-svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="chart-{key}-title" '
        f'preserveAspectRatio="xMidYMid meet" data-chart="{escape(key)}">',
        f'<title id="chart-{key}-title">{escape(title)}</title>',
    ]
    value = 0.0
    while value <= top + 1e-9:
        y = _y(value, top)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_num(y)}" y2="{_num(y)}"/>')
        parts.append(f'<text class="tick y" x="{LEFT - 6}" y="{_num(y + 4)}">{escape(tick(value))}</text>')
        value += step
    count = len(days)
    every = max(1, math.ceil(count / MAX_X_LABELS))
    labelled = set(range(0, count, every)) | ({count - 1} if count else set())
    # A regular label too close to the last one would overlap it.
    labelled = {i for i in labelled if i in (0, count - 1) or count - 1 - i >= every * 0.9}
    for index in sorted(labelled):
        x = _bar_center(index, count) if bar_slots else _x(index, count)
        # Labels at the plot's ends align inwards, so that none is cut off by the edge.
        anchor = " end" if x > WIDTH - RIGHT - 20 else " start" if x < LEFT + 20 else ""
        parts.append(f'<text class="tick x{anchor}" x="{_num(x)}" y="{HEIGHT - 8}">{_day_label(days[index])}</text>')
    parts.append(f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + PLOT_H}" y2="{TOP + PLOT_H}"/>')
    return parts


def _bar_center(index: int, count: int) -> float:
    slot = PLOT_W / max(count, 1)
    return LEFT + slot * (index + 0.5)


def _legend(series: Sequence[Series], extra: str = "") -> str:
    items = "".join(
        f'<li><span class="swatch {escape(s.css)}" aria-hidden="true"></span>{escape(s.name)}</li>' for s in series
    )
    return f'<ul class="legend">{items}{extra}</ul>'


def _empty(parts: list[str]) -> None:
    parts.append(f'<text class="empty" x="{LEFT + PLOT_W / 2}" y="{TOP + PLOT_H / 2}">No data in this period</text>')


def line_chart(
    *,
    key: str,
    title: str,
    days: Sequence[dt.date],
    series: Sequence[Series],
    kind: str = "percent",
    target: float | None = None,
    target_label: str = "",
) -> SafeString:
    """Lines over days. ``kind``: ``percent`` (fractions, axis 0–100 %), ``duration`` (seconds) or ``count``."""
    known = [v for s in series for v in s.values if v is not None]
    fmt: Callable[[float | None], str]
    if kind == "percent":
        top, step = 1.0, 0.25
        tick, fmt = (lambda v: f"{v * 100:.0f} %"), format_percent
    elif kind == "duration":
        top, step, tick = _duration_axis(max([*known, target or 0, 1]))
        fmt = format_duration
    else:
        top, step = _nice_max(max([*known, target or 0, 1]), integer=True)
        tick, fmt = format_number, format_number
    parts = _frame(key, title, days, top, step, tick)
    if target is not None and 0 <= target <= top:
        y = _y(target, top)
        parts.append(f'<line class="target" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_num(y)}" y2="{_num(y)}">'
                     f'<title>{escape(target_label or "target")}: {escape(fmt(target))}</title></line>')
    if not known:
        _empty(parts)
    count = len(days)
    # Over many days the markers would crowd the line: they stay (for their hover
    # titles, and for values without neighbours) but are drawn only when isolated.
    dense = count > 45
    for s in series:
        # One group per series: its colour class is inherited by the line and the points
        # (written once instead of on each of the 90 points of a 90-day chart).
        parts.append(f'<g class="{escape(s.css)}">')
        name = escape(s.name)
        segments: list[list[tuple[int, int]]] = [[]]
        points: list[str] = []
        hidden: list[str] = []
        for index, value in enumerate(s.values):
            if value is None:
                if segments[-1]:
                    segments.append([])
                continue
            x, y = _x(index, count), _y(value, top)
            segments[-1].append((_tenths(x), _tenths(y)))
            isolated = (index == 0 or s.values[index - 1] is None) and (
                index == count - 1 or s.values[index + 1] is None)
            circle = (f'<circle class="point" cx="{_num(x)}" cy="{_num(y)}" r="3">'
                      f"<title>{name}, {_day_label(days[index])}: {escape(fmt(value))}</title></circle>")
            (hidden if dense and not isolated else points).append(circle)
        for segment in segments:
            if len(segment) > 1:
                parts.append(f'<path class="line" d="{_path(segment)}"/>')
        if hidden:
            parts.append(f'<g class="dense">{"".join(hidden)}</g>')
        parts.extend(points)
        parts.append("</g>")
    parts.append("</svg>")
    extra = (f'<li><span class="swatch target" aria-hidden="true"></span>{escape(target_label or "target")}</li>'
             if target is not None else "")
    return _figure(key, title, "".join(parts), _legend(series, extra))


def _path(points: list[tuple[int, int]]) -> str:
    """An SVG path through points given in tenths: absolute start, then relative steps.

    The steps are differences of the rounded absolute positions, so every vertex lands
    exactly where the absolute form put it; the text is about half as long.
    """

    def tenths(value: int) -> str:
        whole, tenth = divmod(abs(value), 10)
        return f"{'-' if value < 0 else ''}{whole}{'.' + str(tenth) if tenth else ''}"

    (x0, y0), rest = points[0], points[1:]
    steps = []
    for (px, py), (x, y) in zip(points, rest, strict=False):
        dy = tenths(y - py)
        # A minus sign separates two numbers by itself; otherwise a space does.
        steps.append(f"{tenths(x - px)}{dy if dy.startswith('-') else ' ' + dy}")
    return f"M{tenths(x0)} {tenths(y0)}l" + " ".join(steps)


def bar_chart(*, key: str, title: str, days: Sequence[dt.date], series: Sequence[Series]) -> SafeString:
    """Stacked bars of counts per day (the first series at the bottom)."""
    count = len(days)
    totals = [sum(s.values[i] or 0 for s in series) for i in range(count)]
    top, step = _nice_max(max([*totals, 1]), integer=True)
    parts = _frame(key, title, days, top, step, format_number, bar_slots=True)
    if not any(totals):
        _empty(parts)
    slot = PLOT_W / max(count, 1)
    width = _num(max(1.0, slot * 0.72))
    left = [_num(_bar_center(index, count) - max(1.0, slot * 0.72) / 2) for index in range(count)]
    base = [0.0] * count
    for s in series:
        # One group per series, its colour class written once (a 90-day chart has 180 bars).
        parts.append(f'<g class="{escape(s.css)}">')
        name = escape(s.name)
        for index in range(count):
            value = s.values[index] or 0
            if value <= 0:
                continue
            y_top, y_bottom = _y(base[index] + value, top), _y(base[index], top)
            parts.append(f'<rect class="bar" x="{left[index]}" y="{_num(y_top)}" width="{width}" '
                         f'height="{_num(max(0.5, y_bottom - y_top))}"><title>{name}, {_day_label(days[index])}: '
                         f"{escape(format_number(value))}</title></rect>")
            base[index] += value
        parts.append("</g>")
    parts.append("</svg>")
    return _figure(key, title, "".join(parts), _legend(series))


def _figure(key: str, title: str, svg: str, legend: str) -> SafeString:
    # Every piece was built from escaped text and numbers above.
    return mark_safe(  # noqa: S308
        f'<figure class="chart" id="chart-{escape(key)}"><figcaption><h3>{escape(title)}</h3>{legend}'
        f"</figcaption>{svg}</figure>"
    )
