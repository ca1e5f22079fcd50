"""The SVG charts' compact markup: the same geometry and hover titles as the long form, in fewer bytes."""

from __future__ import annotations

import datetime as dt
import re

from dashboard import charts

DAYS = [dt.date(2026, 9, 4) + dt.timedelta(days=i) for i in range(90)]


def vertices(d: str) -> list[tuple[float, float]]:
    """Absolute vertices of a path written as ``M x y l dx dy dx dy …`` (relative steps)."""
    assert d.startswith("M") and d.count("l") == 1 and "L" not in d
    numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", d)]
    points = [(numbers[0], numbers[1])]
    for i in range(2, len(numbers), 2):
        x, y = points[-1]
        points.append((round(x + numbers[i], 1), round(y + numbers[i + 1], 1)))
    return points


def test_coordinates_keep_a_tenth_and_drop_a_trailing_zero():
    assert charts._num(56.0) == "56"
    assert charts._num(157.44) == "157.4"
    assert charts._num(61.55) == f"{61.55:.1f}"  # rounded exactly as the long form rounded it
    assert charts._num(0.04) == "0"
    assert charts._tenths(157.44) == 1574 and charts._tenths(56.0) == 560


def test_relative_path_lands_on_the_absolute_vertices():
    values = [0.155, 0.172, None, 0.164, 0.152, 0.9, 0.0, 1.0, 0.5]
    days = DAYS[: len(values)]
    html = charts.line_chart(key="t", title="T", days=days, series=[charts.Series("Rate", "c-override", values)])
    paths = re.findall(r'<path class="line" d="([^"]+)"', html)
    expected = []
    for segment in ([0, 1], [3, 4, 5, 6, 7, 8]):
        expected.append([(float(f"{charts._x(i, len(days)):.1f}"), float(f"{charts._y(values[i], 1.0):.1f}"))
                         for i in segment])
    assert [vertices(d) for d in paths] == expected


def test_dense_points_share_one_group_and_keep_their_titles():
    values: list[float | None] = [0.1 + i / 1000 for i in range(90)]
    values[40] = None
    values[42] = None  # day 41 is isolated: drawn as a visible point
    html = charts.line_chart(key="override", title="Override rate", days=DAYS,
                             series=[charts.Series("Override rate", "c-override", values)])
    svg = html[html.index("<svg"):html.index("</svg>")]
    # The colour class once, on the series' group; every point keeps its class and hover title.
    assert svg.count("c-override") == 1 and '<g class="c-override">' in svg
    assert svg.count('<circle class="point"') == 88
    dense = svg[svg.index('<g class="dense">'):]
    dense = dense[: dense.index("</g>")]
    assert dense.count("<circle") == 87
    assert "Override rate, Oct 15: 14.1 %" in svg[svg.index("</g>", svg.index('<g class="dense">')):]
    assert "Override rate, Sep 4: 10.0 %" in dense
    assert ".0" + '"' not in svg  # no coordinate written as "56.0"


def test_stacked_bars_by_series_group():
    auto = [5, 0, 3]
    routed = [2, 4, None]
    html = charts.bar_chart(key="volume", title="Daily volume", days=DAYS[:3], series=[
        charts.Series("Auto-accepted", "c-auto", auto), charts.Series("Routed to review", "c-routed", routed)])
    svg = html[html.index("<svg"):html.index("</svg>")]
    assert svg.count('<rect class="bar"') == 4 and svg.count("c-auto") == 1 and svg.count("c-routed") == 1
    bars = {title: (float(y), float(h)) for y, h, title in
            re.findall(r'<rect class="bar" x="[\d.]+" y="([\d.]+)" width="[\d.]+" height="([\d.]+)"><title>(.*?)<',
                       svg)}
    # The routed segment of Sep 4 sits on top of its auto-accepted segment.
    auto_y, _ = bars["Auto-accepted, Sep 4: 5"]
    routed_y, routed_h = bars["Routed to review, Sep 4: 2"]
    assert abs(routed_y + routed_h - auto_y) < 0.11
    assert "Routed to review, Sep 5: 4" in bars and len(bars) == 4
