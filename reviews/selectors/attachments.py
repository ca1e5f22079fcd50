"""Reads of case attachments, always through the one visibility rule for cases."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from reviews.models import Case, CaseAttachment
from reviews.selectors.visibility import cases_visible_to


def attachment_get(*, user: Any, case_id: int, name: str) -> CaseAttachment | None:
    """The attachment ``name`` of case ``case_id``, if ``user`` may see that case (else ``None``)."""
    visible = cases_visible_to(user).filter(pk=case_id)
    return CaseAttachment.objects.filter(case__in=visible.values("pk"), name=name).first()


def attachments_of(case: Case) -> list[CaseAttachment]:
    """The case's attachments (the caller already decided the user may see the case)."""
    return list(CaseAttachment.objects.filter(case=case).order_by("name"))


def attachment_url(attachment: CaseAttachment) -> str:
    """Where the portal serves the attachment (permission-checked, never a storage URL)."""
    return reverse("cases-attachment", kwargs={"pk": attachment.case_id, "name": attachment.name})


def attachment_representation(attachment: CaseAttachment) -> dict[str, Any]:
    return {
        "name": attachment.name,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "sha256": attachment.sha256,
        "uploaded_at": attachment.uploaded_at.isoformat().replace("+00:00", "Z"),
        "url": attachment_url(attachment),
    }
