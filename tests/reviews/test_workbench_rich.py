"""The workbench's rich content without a browser: what the case page sends for each configuration."""

from __future__ import annotations

import base64

import pytest
from django.test import Client

from reviews.models import Case
from tests.reviews.workbench_helpers import make_point, make_queued_case

pytestmark = pytest.mark.django_db

MP3 = "data:audio/mpeg;base64," + base64.b64encode(b"ID3\x03" + b"\x00" * 30).decode()
WEBM = "data:video/webm;base64," + base64.b64encode(b"\x1a\x45\xdf\xa3" + b"\x00" * 30).decode()
EXPLANATION = {"reason_codes": ["R7"], "attributions": [{"feature": "income", "weight": 0.3}]}


def _open(make_user, point, **case_kwargs) -> tuple[Case, str]:
    case = make_queued_case(point, external_id="c-1", **case_kwargs)
    Case.objects.filter(pk=case.pk).update(explanation=EXPLANATION)
    reviewer = make_user("reviewer", systems=[point.system.slug])
    client = Client()
    client.force_login(reviewer)
    response = client.post("/review/claim/", follow=True)
    assert response.status_code == 200
    return case, response.content.decode()


def test_audio_video_and_explanation_render(make_user) -> None:
    point = make_point(display=[{"field": "call", "renderer": "audio"}, {"field": "cam", "renderer": "video"}])
    _, html = _open(make_user, point, input={"call": MP3, "cam": WEBM, "note": "kept"})
    assert '<audio class="rc-media" controls preload="metadata" src="data:audio/mpeg;base64,' in html
    assert '<video class="rc-media" controls preload="metadata" src="data:video/webm;base64,' in html
    assert 'id="rc-explain"' in html and "R7" in html
    assert "Other input fields" in html and "kept" in html
    assert "reviews/rich.css" in html
    assert "pdf_viewer.mjs" not in html  # the PDF module loads only where a PDF is shown


def test_blind_case_hides_the_explanation(make_user) -> None:
    point = make_point()
    _, html = _open(make_user, point, blind=True)
    assert 'id="rc-explain"' not in html and "R7" not in html and "rc-chart" not in html


def test_without_configuration_the_readable_view_stays(make_user) -> None:
    point = make_point()
    _, html = _open(make_user, point)
    assert "rc-input" not in html
    assert 'class="wb-input"' in html


def test_explanation_absent_when_none_sent(make_user) -> None:
    point = make_point()
    case = make_queued_case(point, external_id="c-2")
    reviewer = make_user("reviewer", systems=[point.system.slug])
    client = Client()
    client.force_login(reviewer)
    html = client.post("/review/claim/", follow=True).content.decode()
    assert f"Case #{case.pk}" in html and 'id="rc-explain"' not in html
