"""The start page sends each role to where its work is."""

from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_anonymous_visitors_are_sent_to_the_login(client):
    response = client.get(reverse("home"))
    assert response.status_code == 302 and reverse("login") in response["Location"]


@pytest.mark.parametrize(("role", "target"), [("reviewer", "reviews:queue"), ("manager", "dashboard:index")])
def test_reviewers_and_managers_land_on_their_work(client, make_user, role, target):
    client.force_login(make_user(role))
    response = client.get(reverse("home"))
    assert response.status_code == 302 and response["Location"] == reverse(target)


def test_officers_get_the_oversight_sections(client, make_user):
    client.force_login(make_user("compliance_officer"))
    html = client.get(reverse("home")).content.decode()
    for name in ("compliance:system_list", "compliance:incident_list", "dashboard:index", "audit:case_list"):
        assert f'href="{reverse(name)}"' in html


def test_integrations_get_only_the_api_docs(client, make_user):
    client.force_login(make_user("integration"))
    html = client.get(reverse("home")).content.decode()
    assert reverse("api-docs") in html and reverse("compliance:system_list") not in html
