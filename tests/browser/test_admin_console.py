"""The oversight console in a real browser: an admin halts a system with a reason."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings

from audit.models import AuditEvent
from reviews.models import AISystem, SystemStatus
from tests.audit.factories import make_system

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = settings.BASE_DIR / "test-artifacts"


def test_admin_halts_a_system_from_the_console(page: Any, live_server: Any, make_user: Any) -> None:
    # Live-server tests start from an empty database: create what the test needs.
    boss = make_user("admin", "boss")
    system = make_system("credit-scoring", actor=boss, name="Credit scoring")
    make_system(
        "content-moderation",
        actor=boss,
        name="Content moderation",
        labels=["allow", "remove"],
        declared_tier="limited",
        annex_iii_area="",
    )

    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("input[name=username]", "boss")
    page.fill("input[name=password]", "pass-word-123")
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    assert "HITL oversight console" in page.content()

    page.goto(f"{live_server.url}/admin/reviews/aisystem/")
    page.check(f"input[name=_selected_action][value='{system.pk}']")
    page.select_option("select[name=action]", "halt_systems")
    page.click("button[name=index]")

    # The intermediate page: nothing is halted before a reason is confirmed.
    page.wait_for_selector("textarea[name=reason]")
    assert "Halt selected systems" in page.content()
    assert AISystem.objects.get(pk=system.pk).status == SystemStatus.ACTIVE
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-halt-confirm.png"), full_page=True)
    page.fill("textarea[name=reason]", "Model drift detected in production; stop auto-acceptance.")
    page.click("input[type=submit][value='Halt systems']")

    success = page.wait_for_selector("ul.messagelist li.success")
    assert "Halted: Credit scoring." in success.inner_text()
    row = page.locator("#result_list tbody tr", has_text="credit-scoring")
    assert "Halted" in row.inner_text()
    page.screenshot(path=str(ARTIFACTS / "admin-halt.png"), full_page=True)

    system.refresh_from_db()
    assert system.status == SystemStatus.HALTED
    assert system.status_reason == "Model drift detected in production; stop auto-acceptance."
    event = AuditEvent.objects.get(action="system.halted", system_id=system.pk)
    assert (event.actor_id, event.actor_name) == (boss.pk, "boss")
    assert event.reason == system.status_reason
    assert event.seq is not None  # sealed right after the admin's transaction committed
    assert AISystem.objects.get(slug="content-moderation").status == SystemStatus.ACTIVE
