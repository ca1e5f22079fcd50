"""Rich case content in a real browser: an image case, a PDF case, a chat transcript, an explanation
chart, a custom review form, hostile content, and the officers' review setup page.

Screenshots go to ``test-artifacts/``; with ``HITL_WRITE_DOCS_SCREENSHOTS=1`` the workbench shots are
also written to ``docs/img/workbench-{image,pdf,chat}.png``.
"""

from __future__ import annotations

import base64
import io
import os
import re
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from reviews.demo_content import payslip_pdf  # one hand-built PDF for the demo and the tests
from reviews.models import Case, Decision, InterventionPoint
from reviews.services.attachments import attachment_add
from reviews.services.systems import intervention_point_update
from tests.conftest import wait_until
from tests.reviews.workbench_helpers import make_point, make_queued_case

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
DOCS_IMG = ROOT / "docs" / "img"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _catalog(transactional_db: Any) -> Any:
    """Live-server tests flush the database: reload the catalog registering a system needs."""
    from compliance.catalog import load_catalog

    return load_catalog()


@pytest.fixture(autouse=True)
def _attachment_storage(tmp_path: Any) -> Any:
    storages = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        "attachments": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                        "OPTIONS": {"location": str(tmp_path / "attachments")}},
    }
    with override_settings(STORAGES=storages):
        yield


def shoot(page: Any, name: str, *, docs: bool = False) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)
    if docs and os.environ.get("HITL_WRITE_DOCS_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS_IMG / name), full_page=True)


def chest_png() -> bytes:
    """A small radiograph-like PNG (Pillow draws it; a real, decodable image)."""
    from PIL import Image, ImageDraw, ImageFilter

    image = Image.new("L", (360, 300), 12)
    draw = ImageDraw.Draw(image)
    draw.ellipse((40, 30, 320, 290), fill=70)
    draw.ellipse((70, 60, 170, 260), fill=25)
    draw.ellipse((190, 60, 290, 260), fill=25)
    for y in range(70, 250, 22):
        draw.arc((60, y - 30, 300, y + 30), 200, 340, fill=170, width=5)
    draw.rectangle((172, 30, 188, 290), fill=190)
    draw.ellipse((215, 150, 245, 180), fill=150)
    image = image.filter(ImageFilter.GaussianBlur(2))
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "PNG")
    return buffer.getvalue()


SEVERITY = {"name": "finding", "label": "Finding", "type": "single_choice",
            "choices": ["normal", "nodule", "effusion"], "required": True}
EXPLANATION = {
    "reason_codes": ["R12: opacity in the right lower lobe"],
    "attributions": [{"feature": "opacity_right_lower", "value": 0.81, "weight": 0.46},
                     {"feature": "patient_age", "value": 67, "weight": 0.12},
                     {"feature": "image_quality", "value": "fair", "weight": -0.09},
                     {"feature": "prior_scan_clear", "value": True, "weight": -0.21}],
}


def _claim(page: Any, case: Case) -> None:
    page.get_by_role("button", name="Claim next case").click()
    page.wait_for_url(re.compile(rf"/review/case/{case.pk}/$"))


def _no_sideways_scroll(page: Any) -> bool:
    """The rich content stays inside the page's width (the top navigation is another change's business)."""
    return page.evaluate("""() => [...document.querySelectorAll('.content > *, .rc-block, .rc-fields')]
        .every(e => e.getBoundingClientRect().right <= window.innerWidth + 1)""")


def test_image_case_renders_with_explanation_and_required_form_field(page, live_server, login, make_user):
    point = make_point(system_slug="chest-xray", point_slug="radiology-second-read", decision_fields=[SEVERITY],
                       display=[{"field": "image", "renderer": "image", "label": "Chest X-ray (PA)"},
                                {"field": "report", "renderer": "text", "label": "Draft report",
                                 "highlights": "report_spans"},
                                {"field": "patient", "renderer": "key_value", "label": "Patient"}])
    png = base64.b64encode(chest_png()).decode()
    case = make_queued_case(point, external_id="cxr-2207", input={
        "image": f"data:image/png;base64,{png}",
        "report": "Opacity in the right lower lobe, possibly a nodule. No pleural effusion.",
        "report_spans": [{"start": 0, "end": 31, "label": "finding"}],
        "patient": {"age": 67, "sex": "f", "referrer": "Ward 4B"},
        "study_id": "ST-99812",
    })
    Case.objects.filter(pk=case.pk).update(explanation=EXPLANATION)
    make_user("reviewer", "rad1", systems=["chest-xray"])

    login("rad1")
    _claim(page, case)
    image = page.locator("img.rc-image")
    image.wait_for()
    wait_until(page, "document.querySelector('img.rc-image').complete")
    assert page.evaluate("document.querySelector('img.rc-image').naturalWidth") == 360
    assert page.locator(".rc-text mark").inner_text() == "Opacity in the right lower lobe"
    assert "ST-99812" in page.locator(".rc-other").text_content()
    # The explanation chart: one bar per attribution, green for, red against.
    assert page.locator("#rc-explain svg rect.rc-pos").count() == 2
    assert page.locator("#rc-explain svg rect.rc-neg").count() == 2
    assert "R12: opacity in the right lower lobe" in page.locator("#rc-explain").inner_text()
    shoot(page, "workbench-image.png", docs=True)

    # The required extra field: approving without it is refused, naming the field; the draft stays.
    page.check('input[name="outcome"][value="approve"]')
    page.get_by_role("button", name="Submit decision").click()
    page.wait_for_load_state("networkidle")
    assert "This field is required." in page.locator('.rc-field[data-field="finding"]').inner_text()
    assert Decision.objects.filter(case=case).count() == 0
    page.get_by_label("nodule").check()
    page.check('input[name="outcome"][value="approve"]')
    page.get_by_role("button", name="Submit decision").click()
    page.wait_for_load_state("networkidle")
    decision = Decision.objects.get(case=case)
    assert decision.form_values == {"finding": "nodule"}

    # 390 px: the same case page (a second case) does not scroll sideways.
    second = make_queued_case(point, external_id="cxr-2208", input={
        "image": f"data:image/png;base64,{png}", "report": "No finding.", "patient": {"age": 40}})
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/review/")
    _claim(page, second)
    wait_until(page, "document.querySelector('img.rc-image').complete")
    assert _no_sideways_scroll(page)
    shoot(page, "workbench-image-390.png", docs=True)


def test_pdf_attachment_case_draws_on_canvas(page, live_server, login, make_user):
    point = make_point(system_slug="credit-scoring", point_slug="income-check",
                       display=[{"field": "payslip", "renderer": "pdf", "label": "Payslip"},
                                {"field": "statement", "renderer": "long_text", "label": "Applicant's statement"},
                                {"field": "income", "renderer": "table", "label": "Declared income"}])
    case = make_queued_case(point, external_id="app-5512", input={
        "payslip": "attachment:payslip.pdf",
        "statement": "I have worked for Northwind Logistics since 2021.\nMy net income is 2,950 EUR.",
        "income": [{"month": "2026-08", "net_eur": 2950}, {"month": "2026-09", "net_eur": 2950},
                   {"month": "2026-10", "net_eur": 2950}],
    })
    integration = make_user("integration", "bank-core", systems=["credit-scoring"])
    attachment_add(actor=integration, case=case, name="payslip.pdf",
                   upload=SimpleUploadedFile("payslip.pdf", payslip_pdf(), content_type="application/pdf"))
    make_user("reviewer", "rev7", systems=["credit-scoring"])

    console: list[str] = []
    page.on("console", lambda m: console.append(m.text))
    login("rev7")
    _claim(page, case)
    wait_until(page, "document.querySelector('.rc-pdf').dataset.rendered !== undefined", timeout=60000)
    assert page.locator(".rc-pdf").get_attribute("data-rendered") == "1", (page.locator(".rc-pdf").inner_text(),
                                                                            console)
    # Non-blank: some pixel of the drawn page is neither white nor transparent (the blue header bar).
    coloured = page.evaluate("""() => {
        const c = document.querySelector('canvas.rc-pdf-page');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) { if (d[i + 3] > 0 && (d[i] < 200 || d[i + 1] < 200)) { n++; } }
        return n;
    }""")
    assert coloured > 1000
    assert page.locator(".rc-table tbody tr").count() == 3
    shoot(page, "workbench-pdf.png", docs=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    wait_until(page, "document.querySelector('.rc-pdf').dataset.rendered !== undefined", timeout=60000)
    assert _no_sideways_scroll(page)
    shoot(page, "workbench-pdf-390.png", docs=True)


def test_chat_transcript_renders(page, live_server, login, make_user):
    point = make_point(system_slug="support-assistant", point_slug="answer-review",
                       display=[{"field": "conversation", "renderer": "chat", "label": "Conversation"},
                                {"field": "retrieved", "renderer": "json", "label": "Retrieved documents"}])
    case = make_queued_case(point, external_id="conv-311", input={
        "conversation": [
            {"role": "system", "content": "You are the support assistant of an energy provider."},
            {"role": "user", "content": "Can I pay my overdue bill in instalments? I lost my job last month."},
            {"role": "assistant", "content": "Yes. You can split an overdue bill into up to 6 monthly "
                                             "instalments. I have prepared the request: shall I submit it?"},
            {"role": "user", "content": "Yes please. <script>alert('x')</script>"},
        ],
        "retrieved": {"policy": "Payment plans", "section": "4.2", "max_instalments": 6},
    })
    make_user("reviewer", "rev8", systems=["support-assistant"])
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    login("rev8")
    _claim(page, case)
    messages = page.locator(".rc-chat .rc-msg")
    assert messages.count() == 4
    assert page.locator(".rc-chat .rc-msg-user").count() == 2
    assert "<script>alert('x')</script>" in messages.nth(3).inner_text()
    assert dialogs == []
    shoot(page, "workbench-chat.png", docs=True)
    page.set_viewport_size({"width": 390, "height": 844})
    assert _no_sideways_scroll(page)
    shoot(page, "workbench-chat-390.png", docs=True)


def test_hostile_content_is_escaped_and_never_loaded(page, live_server, login, make_user):
    svg = base64.b64encode(b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>').decode()
    point = make_point(system_slug="moderation", point_slug="image-check",
                       display=[{"field": "caption", "renderer": "text"},
                                {"field": "svg", "renderer": "image"},
                                {"field": "js", "renderer": "image"},
                                {"field": "remote", "renderer": "image"},
                                {"field": "fake_png", "renderer": "image"}])
    case = make_queued_case(point, external_id="post-1", input={
        "caption": '<script>alert("caption")</script><img src=x onerror=alert(2)>',
        "svg": f"data:image/svg+xml;base64,{svg}",
        "js": "javascript:alert(3)",
        "remote": "https://tracker.example.org/pixel.png",
        "fake_png": f"data:image/png;base64,{svg}",
    })
    make_user("reviewer", "mod1", systems=["moderation"])
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    login("mod1")
    _claim(page, case)
    assert '<script>alert("caption")</script>' in page.locator(".rc-text").inner_text()
    assert page.locator(".rc-input img").count() == 0
    problems = page.locator(".rc-problem").all_inner_texts()
    assert len(problems) == 4
    assert any("allow-list" in p for p in problems)
    assert "javascript:" not in "".join(
        page.evaluate("[...document.querySelectorAll('[src],[href]')].map(e => e.getAttribute('src') || "
                      "e.getAttribute('href'))"))
    assert dialogs == []


def test_officer_edits_display_and_review_form(page, live_server, login, make_user):
    point = make_point(system_slug="chest-xray", point_slug="radiology-second-read")
    make_user("compliance_officer", "co1")
    login("co1")
    page.goto(f"{live_server.url}/review/setup/")
    page.get_by_role("link", name="Radiology Second Read").click()
    page.fill("#id_display-0-field", "image")
    page.select_option("#id_display-0-shown_as", "image")
    page.fill("#id_display-0-label", "Chest X-ray")
    page.fill("#id_fields-0-name", "finding")
    page.fill("#id_fields-0-label", "Finding")
    page.select_option("#id_fields-0-type", "single_choice")
    page.check("#id_fields-0-required")
    page.fill("#id_fields-0-choices", "normal\nnodule")
    page.fill("#id_reason", "Show the image; ask for the finding.")
    page.get_by_role("button", name="Save as a new rules version").click()
    page.wait_for_load_state("networkidle")
    assert "rules version 2" in page.content()
    point = InterventionPoint.objects.get(pk=point.pk)
    assert point.display == [{"field": "image", "renderer": "image", "label": "Chest X-ray"}]
    assert point.decision_fields[0]["choices"] == ["normal", "nodule"]
    # A bad row is refused with the reason, and nothing changes.
    page.fill("#id_fields-1-name", "Bad Name")
    page.fill("#id_fields-1-label", "x")
    page.select_option("#id_fields-1-type", "text")
    page.get_by_role("button", name="Save as a new rules version").click()
    assert "Not saved." in page.content()
    assert InterventionPoint.objects.get(pk=point.pk).version == 2
    shoot(page, "review-setup.png")
    page.set_viewport_size({"width": 390, "height": 844})
    assert _no_sideways_scroll(page)


def test_setup_page_denied_to_reviewers(client, make_user):
    make_point()
    reviewer = make_user("reviewer", "rev-denied", systems=["credit-scoring"])
    client.force_login(reviewer)
    assert client.get("/review/setup/").status_code == 403
    point = InterventionPoint.objects.get()
    response = client.post(f"/review/setup/{point.system.slug}/{point.slug}/", {})
    assert response.status_code == 403
    unused = intervention_point_update  # the page calls this service (tested through the page above)
    assert unused is not None
