"""Login lockout, TOTP enrolment and verification, API tokens: clicked through in a real browser.

Desktop (1366 px) and phone (390 px); screenshots go to test-artifacts/.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import cache
from django_otp.oath import TOTP
from knox.models import AuthToken

from audit.models import AuditEvent

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = settings.BASE_DIR / "test-artifacts"
PASSWORD = "pass-word-123"
SIZES = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}


def open_menu(page: Any) -> None:
    """On a phone the header's links sit behind the "Menu" button (portal.js): open it as a person would."""
    toggle = page.locator("button.nav-toggle")
    if toggle.is_visible() and toggle.get_attribute("aria-expanded") == "false":
        toggle.click()


@pytest.fixture(autouse=True)
def _fresh_counters() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(params=list(SIZES))
def sized_page(request: Any, browser: Any) -> Iterator[tuple[str, Any]]:
    context = browser.new_context(viewport=SIZES[request.param])
    page = context.new_page()
    page.set_default_timeout(15000)
    yield request.param, page
    context.close()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def log_in(page: Any, base: str, username: str, password: str = PASSWORD, next_url: str = "") -> None:
    page.goto(f"{base}/accounts/login/" + (f"?next={next_url}" if next_url else ""))
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit].primary")


def code_from_secret(secret_text: str, steps_ahead: int = 0) -> str:
    """What an authenticator app shows for the key the page displayed (spaces and all)."""
    compact = secret_text.replace(" ", "").strip()
    key = base64.b32decode(compact + "=" * (-len(compact) % 8))
    totp = TOTP(key, step=30, t0=0, digits=6)
    totp.time = time.time() + 30 * steps_ahead
    return f"{totp.token():06d}"


def test_wrong_passwords_lock_the_login_page(sized_page: tuple[str, Any], live_server: Any, make_user: Any) -> None:
    size, page = sized_page
    make_user("manager", "maria")
    for attempt in range(settings.AXES_FAILURE_LIMIT - 1):
        log_in(page, live_server.url, "maria", f"wrong-{attempt}")
        assert page.locator("p.error").inner_text().startswith("Your username and password didn't match")
    log_in(page, live_server.url, "maria", "wrong-last")
    page.wait_for_selector("h1:has-text('Login locked')")
    shot(page, f"identity-locked-{size}")
    # The right password now gets the same page.
    page.click("text=Back to the login page")
    log_in(page, live_server.url, "maria")
    page.wait_for_selector("h1:has-text('Login locked')")
    assert AuditEvent.objects.filter(action="user.locked_out", object_label="maria").count() == 1


def test_an_officer_enrols_and_then_verifies_a_second_factor(
    sized_page: tuple[str, Any], live_server: Any, make_user: Any, settings: Any
) -> None:
    size, page = sized_page
    settings.HITL_REQUIRE_MFA = True
    make_user("compliance_officer", "olga")
    log_in(page, live_server.url, "olga", next_url="/dashboard/")
    page.wait_for_url("**/accounts/mfa/?next=*")
    secret = page.get_by_test_id("totp-secret").inner_text()
    assert page.locator(".qr svg").count() == 1
    # Until the factor is given, the navigation offers nothing it would refuse.
    assert page.locator("nav.mainnav a").count() == 0
    page.click("summary:has-text('otpauth URI')")
    assert page.get_by_test_id("totp-uri").inner_text().startswith("otpauth://totp/")
    shot(page, f"identity-mfa-setup-{size}")
    page.fill("#id_code", "000000")
    page.click("button:has-text('Confirm and enrol')")
    assert "not valid" in page.locator("p.error").inner_text()
    page.fill("#id_code", code_from_secret(secret))
    page.click("button:has-text('Confirm and enrol')")
    page.wait_for_url("**/dashboard/")
    assert page.locator("nav.mainnav a").count() > 0
    assert AuditEvent.objects.filter(action="user.mfa_enrolled", actor_name="olga").exists()

    open_menu(page)
    page.click("button:has-text('Log out')")
    log_in(page, live_server.url, "olga", next_url="/dashboard/")
    page.wait_for_url("**/accounts/mfa/verify/?next=*")
    shot(page, f"identity-mfa-verify-{size}")
    page.fill("#id_code", code_from_secret(secret, steps_ahead=1))
    page.click("button:has-text('Verify')")
    page.wait_for_url("**/dashboard/")


def test_a_person_issues_and_revokes_api_tokens(sized_page: tuple[str, Any], live_server: Any,
                                                make_user: Any) -> None:
    size, page = sized_page
    user = make_user("reviewer", "rita")
    log_in(page, live_server.url, "rita")
    open_menu(page)
    page.click("header >> text=API tokens")
    page.wait_for_selector("h1:has-text('Your API tokens')")
    page.click("button:has-text('Issue a new token')")
    key = page.get_by_test_id("new-key").inner_text().strip()
    assert len(key) == 64 and AuthToken.objects.get(user=user).token_key == key[:15]
    shot(page, f"identity-tokens-{size}")
    # Shown once: reloading the list does not show it again.
    page.goto(f"{live_server.url}/accounts/tokens/")
    assert key not in page.content() and f"{key[:15]}…" in page.content()
    page.click(f"button[aria-label='Revoke {key[:15]}']")
    page.wait_for_selector("li.msg-success:has-text('Token revoked')")
    assert not AuthToken.objects.filter(user=user).exists()


def test_an_officer_rotates_an_integration_token(sized_page: tuple[str, Any], live_server: Any,
                                                 make_user: Any) -> None:
    size, page = sized_page
    bot = make_user("integration", "scoring-bot")
    old_digest = AuthToken.objects.create(user=bot)[0].digest
    make_user("compliance_officer", "olga")
    log_in(page, live_server.url, "olga")
    page.goto(f"{live_server.url}/accounts/tokens/")
    page.fill("input[aria-label='Reason for rotating scoring-bot']", "Key pasted in a ticket.")
    page.click("form.rotate-form button:has-text('Rotate')")
    key = page.get_by_test_id("new-key").inner_text().strip()
    assert "New token for scoring-bot" in page.locator(".new-key").inner_text()
    shot(page, f"identity-rotate-{size}")
    [token] = AuthToken.objects.filter(user=bot)
    assert token.digest != old_digest and token.token_key == key[:15]
    assert AuditEvent.objects.filter(action="user.token_issued", actor_name="olga",
                                     reason="Key pasted in a ticket.").exists()
