"""Art. 12/19 evidence reads the nightly verification instead of re-walking the chain on a page load."""

from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest
from django.utils import timezone

from audit.selectors import verify_chain
from audit.services import chain_verification_record, seal_pending
from compliance.selectors import evidence

pytestmark = pytest.mark.django_db


def test_a_fresh_recorded_verification_is_used_without_walking_the_chain() -> None:
    chain_verification_record(result=verify_chain(), actor=None)
    seal_pending()
    with mock.patch.object(evidence, "verify_chain", side_effect=AssertionError("walked the chain")):
        report = evidence.latest_chain_verification()
    assert report["ok"] is True
    assert report["source"].startswith("recorded verification #")


def test_without_a_fresh_recorded_verification_the_chain_is_verified_now() -> None:
    chain_verification_record(result=verify_chain(), actor=None)
    seal_pending()
    later = timezone.now() + evidence.VERIFICATION_MAX_AGE + dt.timedelta(minutes=1)
    with mock.patch.object(evidence, "verify_chain", wraps=verify_chain) as walked:
        report = evidence.latest_chain_verification(now=later)
    assert walked.called
    assert report["source"] == "verified on request" and report["ok"] is True
