"""Every page of the portal, for every role that may see it, at desktop and at 390 px (a phone):

- axe-core (vendored from the npm registry in ``tests/browser/vendor/``, MPL-2.0) reports no
  serious or critical violation;
- at 390 px the page does not scroll sideways (``scrollWidth <= innerWidth``): wide tables
  scroll inside their own box;
- the browser reports no Content-Security-Policy violation (the pages really work under it).

The page list comes from the URL conf: every GET page route must be visited by some role
(parameterised routes are reached by following the portal's own links over demo data), or be
named in ``NOT_PAGES`` with the reason. A new page route that nobody can reach fails the test.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urlsplit

import pytest
from django.core.management import call_command
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.exceptions import Resolver404
from django.utils import timezone

from compliance.catalog import load_catalog

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text(encoding="utf-8")
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Routes that are not pages a person reads (downloads, POST-only actions) or live in
# Django's own admin; the admin index and the audit-trail list are still walked below.
NOT_PAGES = {
    "login": "walked before signing in",
    "logout": "POST only",
    "healthz": "JSON for load balancers",
    "schema": "OpenAPI document (YAML)",
    "api-docs": "Swagger UI, a third-party page (checked for its headers in test_security_headers)",
    "reviews:claim": "POST only (the walk clicks 'Claim next case' and checks the case page)",
    "reviews:renew": "POST only",
    "reviews:release": "POST only",
    "dashboard:series_csv": "CSV download",
    "dashboard:reviewers_csv": "CSV download",
    "compliance:system_suspend": "POST only",
    "compliance:obligations_sync": "POST only",
    "compliance:evidence_download": "file download",
    "compliance:dossier_pdf": "PDF download",
    "compliance:dossier_html": "standalone HTML download rendered for print (WeasyPrint's template)",
    "audit:legal_hold_place": "POST only (the trail page's form; tests/browser/test_records_trail.py)",
    "audit:legal_hold_release": "POST only (the trail page's form)",
    "reviews:assign": "POST only",
    "reviews:comment": "POST only",
    "reviews:skip": "POST only",
    "reviews:undo": "POST only",
    "compliance:explanation_answer": "POST only",
    "compliance:explanation_contest": "POST only",
    "compliance:explanation_assign": "POST only",
    "compliance:explanation_letter_pdf": "PDF download",
    "compliance:explanation_letter_html": "standalone HTML letter (download, rendered for print)",
    "compliance:incident_report_pdf": "PDF download",
    "compliance:explanation_detail": (
        "NOT WALKED: the demo data holds no Art. 86 request; tests/browser/test_explanations.py clicks through "
        "it (desktop and 390 px)"
    ),
    "oidc_authentication_init": "redirect to the OpenID provider (SSO off in the walk)",
    "oidc_authentication_callback": "the OpenID provider's redirect back (tests/reviews/test_identity.py)",
}
SKIPPED_PREFIXES = ("/api/", "/admin/", "/static/")
ADMIN_PAGES = ("/admin/", "/admin/audit/auditevent/")
DOWNLOAD = re.compile(r"\.(csv|pdf|html|json|jsonl|zip)$|/export")


def page_routes() -> set[str]:
    """Every named route of the URL conf outside the API and the admin."""
    names: set[str] = set()

    def walk(patterns: list[Any], namespace: str, prefix: str) -> None:
        for entry in patterns:
            route = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
                walk(entry.url_patterns, ns, route)
            elif isinstance(entry, URLPattern) and entry.name:
                if route.startswith(("api/", "admin/")):
                    continue
                names.add(namespace + entry.name)

    walk(get_resolver().url_patterns, "", "")
    return names


def route_name(path: str) -> str | None:
    try:
        match = resolve(path)
    except Resolver404:
        return None
    return match.view_name


def axe_violations(page: Any) -> list[str]:
    page.evaluate(AXE)  # evaluated by the test driver, so the page's CSP does not block it
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
    }""")
    return [f"{v['impact']}: {v['id']} ({v['help']}) at {v['nodes']}"
            for v in result if v["impact"] in ("serious", "critical")]


def sideways_overflow(page: Any) -> int:
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def overflowing_elements(page: Any) -> list[str]:
    """The innermost elements sticking out on the right: what to fix."""
    return page.evaluate("""() => {
        const out = [];
        for (const el of document.body.querySelectorAll('*')) {
            if (el.getBoundingClientRect().right > window.innerWidth + 0.5
                && ![...el.children].some(c => c.getBoundingClientRect().right > window.innerWidth + 0.5)) {
                const cls = el.className ? '.' + String(el.className).split(' ').join('.') : '';
                out.push(el.tagName.toLowerCase() + cls
                         + ' "' + (el.textContent || '').trim().slice(0, 30) + '"');
            }
        }
        return out.slice(0, 4);
    }""")


def same_site_links(page: Any, base: str) -> Iterator[str]:
    for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"):
        url, _ = urldefrag(href)
        if not url.startswith(base):
            continue
        path = urlsplit(url).path
        if path.startswith(SKIPPED_PREFIXES) or DOWNLOAD.search(path):
            continue
        yield url


@pytest.fixture
def portal_data(transactional_db: Any) -> None:
    """Demo people, systems and traffic, plus one of everything a detail page needs."""
    load_catalog()  # live-server tests flush the database: reload what the migration loaded
    call_command("demo_data", "--cases", "0", stdout=open("/dev/null", "w"))  # noqa: SIM115
    # The walk is about pages, not the Art. 26(2) training gate: the demo reviewers hold no
    # training records yet, so the demo systems ask for none while the traffic is replayed.
    from reviews.models import AISystem as _System

    _System.objects.update(required_trainings=[])
    call_command("demo_data", "--cases", "120", stdout=open("/dev/null", "w"))  # noqa: SIM115
    from django.contrib.auth.models import User

    from fairness.services import bias_audit_request
    from reviews.models import AISystem
    from tests.incidents.incident_helpers import file_incident
    from tests.reviews.factories import ingest

    officer = User.objects.get(username="officer")
    system = AISystem.objects.get(slug="credit-scoring")
    file_incident(actor=officer, system=system, aware_at=timezone.now() - dt.timedelta(hours=3),
                  description="A wrong rejection reached an applicant.")
    bias_audit_request(actor=officer, system=system, attribute="gender")
    from django.db import transaction

    from compliance.services.fria import FRIA_FIELDS, fria_save
    from compliance.services.obligations import obligations_sync

    with transaction.atomic():
        obligations_sync(actor=officer, system=system)
    fria_save(actor=officer, system=system, contents={name: f"Assessed: {name}." for name in FRIA_FIELDS})
    from quality.services.calibration import calibration_session_create
    from reviews.models import InterventionPoint
    from tests.quality.helpers import gold_item

    point = InterventionPoint.objects.get(system=system, slug="loan-review")
    calibration_session_create(actor=officer, name="Loan review calibration", items=[gold_item(point)],
                               reviewers=list(User.objects.filter(username__in=["rev1", "rev2"])))
    # An open alert, so the officers' escalation list links to a case page (reviews:officer_case).
    from reviews.models import AlertKind, Case, CaseStatus
    from reviews.services.escalations import alert_raise

    waiting = Case.objects.filter(status=CaseStatus.QUEUED, is_gold=False).order_by("received_at").first()
    assert waiting is not None, "the demo traffic leaves cases in the queue"
    with transaction.atomic():  # as the sweep raises it: the alert and its audit event together
        alert_raise(case=waiting, kind=AlertKind.QUEUE_AGE)
    # A fresh case below the review threshold, so rev1 has something to claim right now.
    ingest(User.objects.get(username="integration"), external_id="a11y-walk-1", label="reject", confidence=0.4,
           input={"amount": 4200, "applicant": "Jane Example", "text": "Loan application for a used car."})


def start_paths() -> list[str]:
    """Every route without parameters, plus the few parameterised ones no link leads to."""
    from django.urls import NoReverseMatch, reverse

    paths = []
    for name in sorted(page_routes() - set(NOT_PAGES)):
        try:
            paths.append(reverse(name))
        except NoReverseMatch:
            continue
    # The curve page is linked only once a point has enough ground truth; it renders without.
    paths.append(reverse("quality:threshold", args=["credit-scoring", "loan-review"]))
    from compliance.models import FundamentalRightsAssessment, Obligation

    # Filled from the data: linked from pages only in states the demo does not reach.
    for fria in FundamentalRightsAssessment.objects.select_related("system")[:1]:
        paths.append(reverse("compliance:fria_version", args=[fria.system.slug, fria.version]))
    for obligation in Obligation.objects.select_related("system")[:1]:
        paths.append(reverse("compliance:obligation_edit", args=[obligation.system.slug, obligation.pk]))
    return paths


ROLE_USERS = {"reviewer": "rev1", "manager": "manager", "compliance_officer": "officer", "admin": "admin"}


def walk(browser: Any, base: str, username: str, viewport: dict[str, int]) -> tuple[set[str], list[str]]:
    """Visit every page this user can reach by links (one URL per route), checking each."""
    from reviews.management.commands.demo_data import DEMO_PASSWORD

    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(20000)
    csp_errors: list[str] = []
    page.on("console", lambda msg: csp_errors.append(f"{page.url}: {msg.text}")
            if "Content Security Policy" in msg.text else None)
    problems: list[str] = []
    seen_routes: set[str] = set()

    def check(label: str) -> None:
        for violation in axe_violations(page):
            problems.append(f"{username} {viewport['width']}px {label}: {violation}")
        if viewport["width"] <= PHONE["width"]:
            overflow = sideways_overflow(page)
            if overflow > 0:
                problems.append(f"{username} {viewport['width']}px {label}: scrolls sideways by {overflow}px "
                                f"({overflowing_elements(page)})")

    page.goto(f"{base}/accounts/login/")
    check("/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")

    queue = [page.url, f"{base}/", *(base + path for path in start_paths())]
    if username == "admin":
        queue += [base + path for path in ADMIN_PAGES]
    visited: set[str] = set()
    while queue:
        url = queue.pop(0)
        path = urlsplit(url).path
        name = route_name(path)
        key = name if not path.startswith("/admin/") else path
        if url in visited or key is None or key in seen_routes:
            continue
        visited.add(url)
        response = page.goto(url)
        if response is None or response.status != 200 or "text/html" not in response.headers.get("content-type", ""):
            continue
        landing = urlsplit(page.url).path
        if landing != path:  # a redirect (the start page, the classification wizard): check where it lands
            seen_routes.add(key)
            path, name = landing, route_name(landing)
            key = name if not landing.startswith("/admin/") else landing
            if key is None or key in seen_routes:
                continue
        seen_routes.add(key)
        check(path)
        if viewport["width"] == PHONE["width"] and name in {"home", "reviews:queue", "dashboard:index",
                                                           "compliance:system_list", "compliance:incident_list"}:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"a11y-{username}-{name.replace(':', '-')}-390.png"), full_page=True)
        queue += [link for link in same_site_links(page, base) if link not in visited]

    if username == "rev1":
        # The case page is reached by claiming, as a reviewer does.
        page.goto(f"{base}/review/")
        claim = page.get_by_role("button", name=re.compile("Claim next case"))
        if claim.count():
            claim.first.click()
            page.wait_for_url(re.compile(r"/review/case/\d+/$"))
            seen_routes.add("reviews:case")
            check(urlsplit(page.url).path)
            page.get_by_role("button", name=re.compile("Release")).first.click()

    context.close()
    problems += csp_errors
    return seen_routes, problems


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone-390"])
def test_every_page_for_every_role_is_accessible_and_fits_a_phone(browser, live_server, portal_data, viewport):
    visited: set[str] = set()
    problems: list[str] = []
    for username in ROLE_USERS.values():
        routes, found = walk(browser, live_server.url, username, viewport)
        visited |= routes
        problems += found

    assert problems == [], "\n".join(problems)
    missing = page_routes() - visited - set(NOT_PAGES)
    assert missing == set(), f"page routes no role reached by following links: {sorted(missing)}"


def test_the_menu_collapses_on_a_phone_and_works_by_keyboard(browser, live_server, make_user):
    make_user("compliance_officer", "olga")
    shots = {}
    for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("input[name=username]", "olga")
        page.fill("input[name=password]", "pass-word-123")
        page.click("button[type=submit]")
        page.wait_for_load_state("networkidle")
        button = page.get_by_role("button", name="Menu")
        dashboard_link = page.get_by_role("navigation", name="Main").get_by_role("link", name="KPI dashboard")
        if label == "desktop":
            assert not button.is_visible()
            assert dashboard_link.is_visible()
            # Keyboard focus is visible: the first Tab lands on the skip link, which appears.
            page.keyboard.press("Tab")
            assert page.evaluate("document.activeElement.className") == "skip-link"
            assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
        else:
            assert button.get_attribute("aria-expanded") == "false"
            assert not dashboard_link.is_visible()
            button.focus()
            page.keyboard.press("Enter")
            assert button.get_attribute("aria-expanded") == "true"
            assert dashboard_link.is_visible()
            assert sideways_overflow(page) <= 0
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "a11y-menu-open-390.png"))
            page.keyboard.press("Escape")
            assert button.get_attribute("aria-expanded") == "false"
            assert not dashboard_link.is_visible()
            assert page.evaluate("document.activeElement.classList.contains('nav-toggle')")
            dashboard_link_after = page.get_by_role("button", name="Menu")
            dashboard_link_after.click()
            dashboard_link.click()
            page.wait_for_url(re.compile(r"/dashboard/$"))
        shots[label] = ARTIFACTS / f"a11y-home-{label}.png"
        page.goto(f"{live_server.url}/")
        page.screenshot(path=str(shots[label]), full_page=True)
        context.close()
