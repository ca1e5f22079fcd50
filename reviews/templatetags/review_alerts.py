"""``{% open_case_alerts %}``: the officers' home-page panel of cases nobody eligible can take.

A template tag, so the project's home page (a lower floor) shows it without importing this app.
"""

from __future__ import annotations

from typing import Any

from django import template

from reviews.selectors.escalations import open_alerts

register = template.Library()

PANEL_SIZE = 10


@register.inclusion_tag("reviews/_alerts_panel.html")
def open_case_alerts() -> dict[str, Any]:
    alerts = list(open_alerts(limit=PANEL_SIZE + 1))
    return {"alerts": alerts[:PANEL_SIZE], "more": len(alerts) > PANEL_SIZE}
