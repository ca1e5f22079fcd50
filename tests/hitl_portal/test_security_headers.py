"""Content-Security-Policy and Permissions-Policy on every response; no inline code anywhere.

The CSP forbids inline ``<script>``, ``style=""`` attributes and ``<style>`` blocks, so a
template that adds one would silently lose its script or styling in the browser. The scan
below fails on any such addition, in templates and in Python that renders HTML.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]
APPS = ("hitl_portal", "audit", "reviews", "quality", "incidents", "fairness", "records", "dashboard", "compliance")
# Documents rendered to PDF by WeasyPrint (and offered as files to download), never served to a browser
# as a page: the dossier, the Art. 86 explanation letter, the Art. 73 incident report draft.
PDF_ONLY = {"compliance/dossier/document.html", "compliance/explanations/letter.html",
            "compliance/incident_report.html"}

INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)(?![^>]*type=\"application/(?:ld\+)?json\")[^>]*>", re.I)
STYLE_BLOCK = re.compile(r"<style\b", re.I)
STYLE_ATTR = re.compile(r"<[a-z][^>]*\sstyle\s*=", re.I | re.S)
EVENT_ATTR = re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.I | re.S)
JS_URL = re.compile(r"""(?:href|src|action)\s*=\s*["']\s*javascript:""", re.I)


def template_files() -> list[Path]:
    dirs = [ROOT / "templates", *(ROOT / app / "templates" for app in APPS)]
    return sorted(p for d in dirs if d.is_dir() for p in d.rglob("*.html"))


def offences(text: str) -> list[str]:
    found = []
    for name, pattern in (("inline <script>", INLINE_SCRIPT), ("<style> block", STYLE_BLOCK),
                          ("style attribute", STYLE_ATTR), ("on* event handler", EVENT_ATTR),
                          ("javascript: URL", JS_URL)):
        found += [f"{name}: {m.group(0)[:80]!r}" for m in pattern.finditer(text)]
    return found


def test_the_scanner_catches_what_the_csp_blocks():
    assert offences('<script>alert(1)</script>')
    assert offences('<div class="x" style="width: 3px">')
    assert offences('<style>p{}</style>')
    assert offences('<button onclick="go()">')
    assert offences('<a href="javascript:go()">')
    assert not offences('<script src="/static/js/nav.js" defer></script><div class="x">')
    assert not offences('<script id="d" type="application/json">{}</script>')


def test_no_template_has_inline_script_or_style():
    files = template_files()
    assert len(files) > 30  # the scan really sees the portal's templates
    bad = {
        str(path.relative_to(ROOT)): found
        for path in files
        if not any(str(path).endswith(pdf) for pdf in PDF_ONLY)
        for found in [offences(path.read_text(encoding="utf-8"))]
        if found
    }
    assert bad == {}


def test_no_python_renders_inline_style_or_script():
    sources = [p for app in APPS if (ROOT / app).is_dir() for p in (ROOT / app).rglob("*.py")]
    bad = {
        str(path.relative_to(ROOT)): found
        for path in sources
        for found in [offences(path.read_text(encoding="utf-8"))]
        if found
    }
    assert bad == {}


def csp_directives(header: str) -> dict[str, list[str]]:
    parts = (part.strip().split() for part in header.split(";") if part.strip())
    return {words[0]: words[1:] for words in parts}


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/", "/api/docs/", "/healthz", "/no-such-page/"])
def test_every_response_carries_csp_and_permissions_policy(path):
    response = Client().get(path)

    directives = csp_directives(response["Content-Security-Policy"])
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]
    assert "'unsafe-eval'" not in response["Content-Security-Policy"]
    policy = response["Permissions-Policy"]
    for feature in ("camera=()", "microphone=()", "geolocation=()", "payment=()"):
        assert feature in policy


@pytest.mark.django_db
def test_signed_in_pages_carry_the_headers(make_user):
    officer, admin = Client(), Client()
    officer.force_login(make_user("compliance_officer"))
    admin.force_login(make_user("admin"))
    for client, path in ((officer, "/"), (officer, "/dashboard/"), (officer, "/compliance/"), (admin, "/admin/")):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "default-src 'self'" in response["Content-Security-Policy"], path
        assert "camera=()" in response["Permissions-Policy"], path


@pytest.mark.django_db
def test_the_api_docs_load_their_script_from_a_url_not_inline():
    page = Client().get("/api/docs/")
    assert page.status_code == 200
    assert not INLINE_SCRIPT.search(page.content.decode())
    script = Client().get("/api/docs/?script=")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")


# --- The policy built once (hitl_portal.middleware.CSPMiddleware) -----------------------------------


def _library_headers(path: str, response_attrs: dict | None = None) -> dict[str, str]:
    """What django-csp's own middleware writes for a plain response to ``path``."""
    from csp.middleware import CSPMiddleware as LibraryCSPMiddleware
    from django.http import HttpResponse
    from django.test import RequestFactory

    request = RequestFactory().get(path)
    middleware = LibraryCSPMiddleware(lambda r: HttpResponse())
    middleware.process_request(request)
    response = HttpResponse()
    for name, value in (response_attrs or {}).items():
        setattr(response, name, value)
    response = middleware.process_response(request, response)
    return {h: response[h] for h in ("Content-Security-Policy", "Content-Security-Policy-Report-Only") if h in response}


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/accounts/login/", "/api/v1/cases/", "/healthz"])
def test_the_built_once_policy_is_the_one_django_csp_builds(path):
    response = Client().get(path)

    ours = {h: response[h] for h in ("Content-Security-Policy", "Content-Security-Policy-Report-Only")
            if h in response}
    assert ours == _library_headers(path)
    assert "Content-Security-Policy" in ours


@pytest.mark.django_db
def test_changed_settings_change_the_header(settings):
    before = Client().get("/healthz")["Content-Security-Policy"]
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": ["'none'"]}}
    after = Client().get("/healthz")
    assert after["Content-Security-Policy"] == "default-src 'none'"
    assert after["Content-Security-Policy"] != before
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = {"DIRECTIVES": {"img-src": ["'self'"]},
                                                    "EXCLUDE_URL_PREFIXES": ["/healthz"]}
    assert "Content-Security-Policy-Report-Only" not in Client().get("/healthz")
    report_only = Client().get("/accounts/login/")["Content-Security-Policy-Report-Only"]
    assert csp_directives(report_only)["img-src"] == ["'self'"]
    assert report_only == _library_headers("/accounts/login/")["Content-Security-Policy-Report-Only"]


def test_a_view_override_or_a_nonce_goes_through_django_csp():
    from django.http import HttpResponse
    from django.test import RequestFactory

    from hitl_portal.middleware import CSPMiddleware

    middleware = CSPMiddleware(lambda r: HttpResponse())
    request = RequestFactory().get("/x/")
    middleware.process_request(request)
    response = HttpResponse()
    response._csp_update = {"img-src": ["https://cdn.example"]}
    written = middleware.process_response(request, response)["Content-Security-Policy"]
    assert "https://cdn.example" in csp_directives(written)["img-src"]
    assert written == _library_headers("/x/", {"_csp_update": {"img-src": ["https://cdn.example"]}})[
        "Content-Security-Policy"]

    request = RequestFactory().get("/x/")
    middleware.process_request(request)
    nonce = str(request.csp_nonce)
    written = middleware.process_response(request, HttpResponse())["Content-Security-Policy"]
    assert written == _library_headers("/x/")["Content-Security-Policy"]  # no directive asks for the nonce
    assert str(request.csp_nonce) == nonce  # django-csp kept the nonce the page used

    exempt = HttpResponse()
    exempt._csp_exempt = True
    request = RequestFactory().get("/x/")
    middleware.process_request(request)
    assert "Content-Security-Policy" not in middleware.process_response(request, exempt)


def test_a_nonce_asked_for_after_the_header_is_written_is_an_error():
    from csp.exceptions import CSPNonceError
    from django.http import HttpResponse
    from django.test import RequestFactory

    from hitl_portal.middleware import CSPMiddleware

    middleware = CSPMiddleware(lambda r: HttpResponse())
    request = RequestFactory().get("/x/")
    middleware.process_request(request)
    middleware.process_response(request, HttpResponse())
    with pytest.raises(CSPNonceError):
        str(request.csp_nonce)
