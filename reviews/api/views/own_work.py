"""A reviewer's own work over the API: comments on a case, skipping a held case, undoing a decision.

The same services as the workbench's forms (``reviews.services.own_work``), so a
reviewer client (a labeling tool, a chat integration) keeps the rules of the
pages: comments follow the blind-phase rule, a skip needs a reason and keeps the
case away from the skipper this round, an undo only within the window and while
the case is open. Each writes its audit event in the service.
"""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from hitl_portal.actors import request_user
from hitl_portal.api.authentication import SCHEMA_AUTH
from hitl_portal.api.views import PortalAPIView
from hitl_portal.roles import COMPLIANCE_OFFICER, REVIEWER
from reviews.api.serializers.queue import ErrorSerializer
from reviews.models import Case, Decision
from reviews.selectors.own_work import comment_rows, comments_visible_to
from reviews.selectors.visibility import cases_visible_to
from reviews.services.own_work import MAX_REASON_CHARS, case_comment_add, claim_skip, decision_undo


class CommentRequestSerializer(serializers.Serializer):
    body = serializers.CharField(max_length=10_000, trim_whitespace=True)


class CommentSerializer(serializers.Serializer):
    author = serializers.CharField()
    body = serializers.CharField()
    at = serializers.DateTimeField()


class SkipRequestSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=MAX_REASON_CHARS, trim_whitespace=True)


class SkipResponseSerializer(serializers.Serializer):
    case = serializers.IntegerField()
    case_status = serializers.CharField()


class UndoResponseSerializer(serializers.Serializer):
    case = serializers.IntegerField()
    case_status = serializers.CharField()
    lease_expires_at = serializers.DateTimeField()


ERRORS = {
    401: OpenApiResponse(ErrorSerializer, description="Not authenticated"),
    403: OpenApiResponse(ErrorSerializer, description="Role not allowed, or not allowed on this case"),
    404: OpenApiResponse(ErrorSerializer, description="No such case visible to you"),
}


def _visible_case(request: Request, pk: int) -> Case:
    # What the pages show the user is what the API lets them touch: another system's case is a 404.
    case = cases_visible_to(request.user).filter(pk=pk).first()
    if case is None:
        raise Http404
    return case


class CaseCommentsView(PortalAPIView):
    """``GET/POST /api/v1/cases/{id}/comments/``: the comments visible to me; add one."""

    roles = {"GET": {REVIEWER, COMPLIANCE_OFFICER}, "POST": {REVIEWER, COMPLIANCE_OFFICER}}

    @extend_schema(auth=SCHEMA_AUTH, summary="Comments on a case visible to me", operation_id="cases_comments_list",
                   responses={200: CommentSerializer(many=True), **ERRORS})
    def get(self, request: Request, pk: int) -> Response:
        case = _visible_case(request, pk)
        return Response(CommentSerializer(comment_rows(comments_visible_to(request_user(request), case)),
                                          many=True).data)

    @extend_schema(auth=SCHEMA_AUTH, summary="Comment on a case", operation_id="cases_comments_create",
                   request=CommentRequestSerializer,
                   responses={201: CommentSerializer, 400: OpenApiResponse(description="Body missing or too long"),
                              **ERRORS})
    def post(self, request: Request, pk: int) -> Response:
        case = _visible_case(request, pk)
        serializer = CommentRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        comment = case_comment_add(author=request_user(request), case=case, body=serializer.validated_data["body"])
        return Response(CommentSerializer(comment_rows([comment])[0]).data, status=status.HTTP_201_CREATED)


class CaseSkipView(PortalAPIView):
    """``POST /api/v1/cases/{id}/skip/``: hand the held case back with a reason; not offered to me again this round."""

    roles = {"POST": {REVIEWER}}

    @extend_schema(auth=SCHEMA_AUTH, summary="Skip a claimed case", request=SkipRequestSerializer,
                   responses={200: SkipResponseSerializer, 400: OpenApiResponse(description="Reason missing"),
                              409: OpenApiResponse(ErrorSerializer, description="No live claim by this reviewer"),
                              **ERRORS})
    def post(self, request: Request, pk: int) -> Response:
        # As release: only the id; the service re-reads the row under a lock and answers 409 without my claim.
        case = get_object_or_404(Case.objects.only("id"), pk=pk)
        serializer = SkipRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        case = claim_skip(reviewer=request_user(request), case=case, reason=serializer.validated_data["reason"])
        return Response({"case": case.pk, "case_status": case.status})


class DecisionUndoView(PortalAPIView):
    """``POST /api/v1/decisions/{id}/undo/``: withdraw my decision within the window; the case is mine again."""

    roles = {"POST": {REVIEWER}}

    @extend_schema(auth=SCHEMA_AUTH, summary="Undo my decision", request=None,
                   responses={200: UndoResponseSerializer,
                              409: OpenApiResponse(ErrorSerializer, description=(
                                  "undo_window_passed, not_open (the case is final or moved on), claimed "
                                  "(someone else holds it) or escalated")),
                              **ERRORS})
    def post(self, request: Request, pk: int) -> Response:
        # Someone else's decision is a 404, as on the pages: its existence is not mine to learn.
        decision = Decision.objects.filter(pk=pk, reviewer_id=request.user.pk).first()
        if decision is None:
            raise Http404
        case = decision_undo(reviewer=request_user(request), decision=decision)
        return Response({"case": case.pk, "case_status": case.status, "lease_expires_at": case.lease_expires_at})

