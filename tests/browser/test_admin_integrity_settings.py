"""The oversight console in a real browser: the sampling salt stays hidden and is rotated with a reason;
an officer-level admin shares a system's cases between its integrations, audited.

Desktop and 390 px phone width.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.conf import settings

from audit.models import AuditEvent
from reviews.models import AISystem, InterventionPoint
from tests.audit.factories import make_system

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = settings.BASE_DIR / "test-artifacts"


def admin_login(page: Any, live_server: Any, username: str) -> None:
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "pass-word-123")
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")


@pytest.mark.parametrize("width", [1366, 390])
def test_admin_rotates_a_sampling_salt_that_is_never_shown(
    width: int, page: Any, live_server: Any, make_user: Any
) -> None:
    boss = make_user("admin", "boss")
    system = make_system("credit-scoring", actor=boss, name="Credit scoring")
    point = InterventionPoint.objects.create(system=system, slug="loan-review", name="Loan review",
                                             random_sample_rate=0.05)
    old_salt = point.sampling_salt
    page.set_viewport_size({"width": width, "height": 900})
    admin_login(page, live_server, "boss")

    page.goto(f"{live_server.url}/admin/reviews/interventionpoint/{point.pk}/change/")
    field = page.locator(".field-sampling_salt_masked")
    assert "••••••••" in field.inner_text()
    assert old_salt not in page.content()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"admin-salt-masked-{width}.png"), full_page=True)

    page.goto(f"{live_server.url}/admin/reviews/interventionpoint/")
    page.check(f"input[name=_selected_action][value='{point.pk}']")
    page.select_option("select[name=action]", "rotate_salts")
    page.click("button[name=index]")
    page.wait_for_selector("textarea[name=reason]")
    assert "Rotate sampling salt" in page.content()
    point.refresh_from_db()
    assert point.sampling_salt == old_salt  # nothing changes before a reason is confirmed
    page.screenshot(path=str(ARTIFACTS / f"admin-salt-rotate-confirm-{width}.png"), full_page=True)
    page.fill("textarea[name=reason]", "Salt pasted into a support ticket by mistake.")
    page.click("input[type=submit][value='Rotate salts']")
    success = page.wait_for_selector("ul.messagelist li.success")
    assert "Sampling salt rotated: credit-scoring/loan-review." in success.inner_text()
    page.screenshot(path=str(ARTIFACTS / f"admin-salt-rotated-{width}.png"), full_page=True)

    point.refresh_from_db()
    assert point.sampling_salt != old_salt
    event = AuditEvent.objects.get(action="intervention_point.salt_rotated")
    assert (event.actor_name, event.reason) == ("boss", "Salt pasted into a support ticket by mistake.")
    assert point.sampling_salt not in page.content()


def test_admin_shares_a_systems_cases_between_integrations(page: Any, live_server: Any, make_user: Any) -> None:
    boss = make_user("admin", "boss")
    system = make_system("credit-scoring", actor=boss, name="Credit scoring")
    admin_login(page, live_server, "boss")
    page.goto(f"{live_server.url}/admin/reviews/aisystem/{system.pk}/change/")
    checkbox = page.locator("input[name=share_cases_between_integrations]")
    assert not checkbox.is_checked()
    checkbox.check()
    page.fill("textarea[name=change_reason]", "The back office reports outcomes for the scoring service.")
    page.screenshot(path=str(ARTIFACTS / "admin-share-cases.png"), full_page=True)
    page.click("input[type=submit][name=_save]")
    page.wait_for_selector("ul.messagelist li.success")

    system.refresh_from_db()
    assert system.share_cases_between_integrations is True
    event = AuditEvent.objects.get(action="system.updated", system_id=system.pk)
    payload = json.loads(event.payload)
    assert payload["before"] == {"share_cases_between_integrations": False}
    assert payload["after"] == {"share_cases_between_integrations": True}
    assert event.reason == "The back office reports outcomes for the scoring service."
    assert AISystem.objects.get(pk=system.pk).share_cases_between_integrations
