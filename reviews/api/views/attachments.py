"""Case attachments API: integrations upload files with a case; people who may see the case fetch them.

``POST /cases/{id}/attachments/`` (multipart: ``file``, ``name``), ``GET`` the list,
``GET /cases/{id}/attachments/{name}/`` the file itself. Visibility is the one rule
of ``reviews.selectors.visibility``: a reviewer only for a case they hold or
decided. The workbench loads images, PDFs and media from the download URL with the
browser session.
"""

from __future__ import annotations

from typing import Any

from django.http import FileResponse, Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from hitl_portal.actors import request_user
from hitl_portal.api.authentication import SCHEMA_AUTH, portal_authentication_classes
from hitl_portal.api.views import PortalAPIView
from hitl_portal.roles import COMPLIANCE_OFFICER, INTEGRATION, MANAGER, REVIEWER
from reviews.models import Case
from reviews.selectors.attachments import attachment_get, attachment_representation, attachments_of
from reviews.selectors.cases import case_get
from reviews.services.attachments import attachment_add

MAX_PK = 2**63 - 1
# Shown in the page (inline); anything else is offered as a download.
INLINE_TYPES = frozenset(("image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "audio/mpeg",
                          "audio/wav", "audio/ogg", "video/mp4", "video/webm"))

AttachmentSerializer = inline_serializer("CaseAttachment", {
    "name": serializers.CharField(),
    "content_type": serializers.CharField(help_text="Sniffed from the content, not the declared type."),
    "size": serializers.IntegerField(),
    "sha256": serializers.CharField(),
    "uploaded_at": serializers.DateTimeField(),
    "url": serializers.CharField(help_text="Where to fetch it (permission-checked)."),
})
UploadSerializer = inline_serializer("CaseAttachmentUpload", {
    "file": serializers.FileField(),
    "name": serializers.CharField(
        required=False, help_text="How the input refers to it (\"attachment:<name>\"); default: the file name."
    ),
})


def _case(request: Request, pk: int) -> Case:
    case = case_get(user=request.user, pk=pk) if pk <= MAX_PK else None
    if case is None:
        raise Http404("No such case.")
    return case


class CaseAttachmentsView(PortalAPIView):
    """``POST`` upload (integrations), ``GET`` list (whoever may see the case)."""

    authentication_classes = portal_authentication_classes()
    parser_classes = [MultiPartParser]
    roles = {"GET": {INTEGRATION, COMPLIANCE_OFFICER, MANAGER, REVIEWER}, "POST": {INTEGRATION}}

    @extend_schema(
        auth=SCHEMA_AUTH, operation_id="cases_attachments_create", request={"multipart/form-data": UploadSerializer},
        responses={201: AttachmentSerializer, 400: OpenApiResponse(OpenApiTypes.OBJECT, description="Field errors"),
                   404: OpenApiResponse(description="No such case"),
                   409: OpenApiResponse(description="case_closed: the case is already decided")},
        summary="Upload a file for a case",
        description="Size- and type-checked (by the file's first bytes; SVG and HTML are refused). The case's input "
        "refers to it as \"attachment:<name>\" in a field its intervention point's display configuration shows.",
    )
    def post(self, request: Request, pk: int) -> Response:
        case = _case(request, pk)
        upload = request.FILES.get("file")
        if upload is None:
            raise serializers.ValidationError({"file": ["This field is required (multipart/form-data)."]})
        form: Any = request.data  # a QueryDict (multipart)
        name = form.get("name") or upload.name or ""
        attachment = attachment_add(actor=request_user(request), case=case, name=name, upload=upload)
        return Response(attachment_representation(attachment), status=status.HTTP_201_CREATED)

    @extend_schema(auth=SCHEMA_AUTH, operation_id="cases_attachments_list",
                   responses={200: inline_serializer("CaseAttachmentList", {
                       "results": inline_serializer("CaseAttachmentItem", {
                           "name": serializers.CharField(), "content_type": serializers.CharField(),
                           "size": serializers.IntegerField(), "sha256": serializers.CharField(),
                           "uploaded_at": serializers.DateTimeField(), "url": serializers.CharField(),
                       }, many=True)})},
                   summary="The files of a case")
    def get(self, request: Request, pk: int) -> Response:
        case = _case(request, pk)
        return Response({"results": [attachment_representation(a) for a in attachments_of(case)]})


class CaseAttachmentFileView(PortalAPIView):
    """``GET``: the file, to whoever may see the case, with headers that stop browsers from reinterpreting it."""

    authentication_classes = portal_authentication_classes()
    roles = {"GET": {INTEGRATION, COMPLIANCE_OFFICER, MANAGER, REVIEWER}}

    @extend_schema(auth=SCHEMA_AUTH, operation_id="cases_attachments_retrieve",
                   responses={(200, "application/octet-stream"): OpenApiTypes.BINARY,
                              404: OpenApiResponse(description="No such case or attachment")},
                   summary="Download one file of a case")
    def get(self, request: Request, pk: int, name: str) -> FileResponse:
        attachment = attachment_get(user=request.user, case_id=pk, name=name) if pk <= MAX_PK else None
        if attachment is None:
            raise Http404("No such attachment.")
        inline = attachment.content_type in INLINE_TYPES and request.query_params.get("download") is None
        response = FileResponse(
            attachment.file.open("rb"), content_type=attachment.content_type, as_attachment=not inline,
            filename=attachment.name,
        )
        response["X-Content-Type-Options"] = "nosniff"
        # Opened on its own, the file may do nothing: no script, no plugins, no forms.
        response["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; media-src 'self'; sandbox"
        response["Cache-Control"] = "private, no-store"
        response["Cross-Origin-Resource-Policy"] = "same-origin"
        return response
