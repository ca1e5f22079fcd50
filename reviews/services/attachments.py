"""Attachments of cases: files an integration uploads with a case (images, PDFs, recordings).

Each file is size-checked, its type sniffed from its first bytes (the declared
type must agree; SVG, HTML and anything unrecognised are refused), stored through
Django's storage API and recorded with its SHA-256 in the audit trail (never its
content or name: both may be personal data).
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction

from audit.services import record_event
from hitl_portal.actors import Actor
from hitl_portal.errors import Conflict
from reviews.content import ATTACHMENT_NAME_RE, SNIFF_BYTES, declared_type_matches, sniff
from reviews.models import Case, CaseAttachment, CaseStatus

CHUNK = 64 * 1024


def _checked_type(upload: UploadedFile) -> str:
    """The sniffed content type of ``upload``, or a 400 naming ``file``."""
    if upload.size is None or upload.size == 0:
        raise ValidationError({"file": ["The file is empty."]})
    limit = settings.HITL_ATTACHMENT_MAX_BYTES
    if upload.size > limit:
        raise ValidationError({"file": [f"The file is larger than {limit} bytes."]})
    upload.seek(0)
    head = upload.read(SNIFF_BYTES)
    upload.seek(0)
    sniffed = sniff(head)
    allowed = settings.HITL_ATTACHMENT_TYPES
    if sniffed is None or sniffed not in allowed:
        raise ValidationError({"file": [
            "Not an accepted file type (by its content). Accepted: " + ", ".join(allowed) + "."
        ]})
    if not declared_type_matches(upload.content_type or "", sniffed):
        raise ValidationError({"file": [
            f"Declared as {upload.content_type} but the content is {sniffed}."
        ]})
    return sniffed


def _sha256(upload: UploadedFile) -> str:
    digest = hashlib.sha256()
    upload.seek(0)
    for chunk in upload.chunks(CHUNK):
        digest.update(chunk)
    upload.seek(0)
    return digest.hexdigest()


def attachment_check(*, name: Any, upload: UploadedFile) -> str:
    """Check a file before anything is stored (name, size, sniffed type); returns the content type."""
    if not isinstance(name, str) or not ATTACHMENT_NAME_RE.match(name):
        raise ValidationError({"name": [
            "1-200 letters, digits, '.', '_' or '-', starting with a letter or digit."
        ]})
    return _checked_type(upload)


@transaction.atomic
def attachment_add(
    *, actor: Actor, case: Case, name: str, upload: UploadedFile, with_submission: bool = False
) -> CaseAttachment:
    """Store ``upload`` as attachment ``name`` of ``case`` (the input refers to it as ``attachment:<name>``).

    Refused: a bad or taken name, an empty, oversized or unaccepted file (400);
    a case that is already decided (409 ``case_closed``: what reviewers saw must
    not change afterwards), unless the file comes with the case's own submission
    (``with_submission``: an auto-accepted case keeps the files it was accepted on).
    """
    content_type = attachment_check(name=name, upload=upload)
    case = Case.objects.select_for_update(of=("self",)).select_related("system").get(pk=case.pk)
    if not with_submission and case.status in (CaseStatus.DECIDED, CaseStatus.AUTO_ACCEPTED):
        raise Conflict("The case is already decided; its attachments can no longer change.", code="case_closed")
    existing = CaseAttachment.objects.filter(case=case)
    if existing.filter(name=name).exists():
        raise ValidationError({"name": ["This case already has an attachment with this name."]})
    if existing.count() >= settings.HITL_ATTACHMENT_MAX_PER_CASE:
        raise ValidationError({"file": [
            f"A case holds at most {settings.HITL_ATTACHMENT_MAX_PER_CASE} attachments."
        ]})
    attachment = CaseAttachment(
        case=case, name=name, content_type=content_type, size=int(upload.size or 0), sha256=_sha256(upload),
        uploaded_by=actor if getattr(actor, "pk", None) else None,
    )
    attachment.file.save(name, upload, save=False)
    try:
        with transaction.atomic():
            attachment.save()
    except IntegrityError as exc:
        attachment.file.delete(save=False)
        raise ValidationError({"name": ["This case already has an attachment with this name."]}) from exc
    # Should the transaction still roll back after this point, the stored file is left
    # unreferenced under a random key: nothing ever serves it (serving goes through the row).
    record_event(
        "case.attachment_added", actor=actor, obj=case, case_id=case.pk, system_id=case.system_id,
        data={"attachment_id": attachment.pk, "content_type": content_type, "size": attachment.size,
              "sha256": attachment.sha256},
    )
    return attachment

