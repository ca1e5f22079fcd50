"""Review-queue endpoints: claim, decide, renew, release; reopen for compliance officers.

Thin: validate the body, call the service, shape the answer. The services check
the live claim (409), the reviewer's standing (403 with the contract's code)
and write the audit trail.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import connections, router
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from hitl_portal.actors import request_user
from hitl_portal.api.authentication import SCHEMA_AUTH, portal_authentication_classes
from hitl_portal.api.views import PortalAPIView
from hitl_portal.roles import COMPLIANCE_OFFICER, REVIEWER
from reviews.api.serializers.queue import (
    AssignRequestSerializer,
    AssignResponseSerializer,
    ClaimRequestSerializer,
    ClaimResponseSerializer,
    DecisionRequestSerializer,
    DecisionResponseSerializer,
    ErrorSerializer,
    LeaseResponseSerializer,
    ReleaseResponseSerializer,
    ReopenRequestSerializer,
    ReopenResponseSerializer,
    claim_response,
)
from reviews.models import AISystem, Case, InterventionPoint
from reviews.selectors.claims import claim_extras
from reviews.selectors.queue import claim_payload
from reviews.services.decisions import case_reopen, decision_record
from reviews.services.errors import ClaimConflict, ReviewerNotAllowed
from reviews.services.escalations import case_assign
from reviews.services.queue import claim_next, claim_release, claim_renew

# Token, user and role in one query (the hot path of review).
PORTAL_AUTHENTICATION = portal_authentication_classes()
ERRORS = {
    401: OpenApiResponse(ErrorSerializer, description="Not authenticated"),
    403: OpenApiResponse(ErrorSerializer, description="Role not allowed, reviewer suspended or not qualified"),
}
CLAIM_ERRORS = {
    **ERRORS,
    404: OpenApiResponse(ErrorSerializer, description="No such case"),
    409: OpenApiResponse(ErrorSerializer, description="No live claim by this reviewer"),
}


def _system_by_slug(slug: str) -> AISystem | None:
    """The system with this slug, only its id and slug loaded (the claim needs no more; the rest loads on access).

    A plain statement: on every claim, compiling the ORM query cost more than running it.
    """
    alias = router.db_for_read(AISystem)
    conn = connections[alias]
    qn = conn.ops.quote_name
    with conn.cursor() as cursor:
        cursor.execute(
            f"SELECT {qn('id')} FROM {qn(AISystem._meta.db_table)} WHERE {qn('slug')} = %s ORDER BY {qn('id')} LIMIT 1",
            [slug],
        )
        row = cursor.fetchone()
    return None if row is None else AISystem.from_db(alias, ["id", "slug"], [row[0], slug])


def _claim_filters(data: dict[str, Any]) -> tuple[AISystem | None, InterventionPoint | None]:
    """Resolve the optional slugs; unknown ones are a 400 naming the field."""
    system = None
    point = None
    if data.get("system"):
        system = _system_by_slug(data["system"])
        if system is None:
            raise ValidationError({"system": ["unknown system"]})
    if data.get("intervention_point"):
        points = InterventionPoint.objects.filter(slug=data["intervention_point"])
        if system is not None:
            points = points.filter(system=system)
        found = list(points[:2])
        if not found:
            raise ValidationError({"intervention_point": ["unknown intervention point"]})
        if len(found) > 1:
            raise ValidationError({"intervention_point": ["ambiguous: several systems use this slug; give system"]})
        point = found[0]
    return system, point


class ClaimView(PortalAPIView):
    """``POST /api/v1/queue/claim/``: lease the next case in queue order."""

    authentication_classes = PORTAL_AUTHENTICATION
    hot_path_methods = frozenset({"POST"})
    roles = {"POST": {REVIEWER}}

    @extend_schema(
        auth=SCHEMA_AUTH,
        summary="Claim the next case",
        request=ClaimRequestSerializer,
        responses={200: ClaimResponseSerializer, 204: OpenApiResponse(description="Nothing claimable"), **ERRORS},
    )
    def post(self, request: Request) -> Response:
        serializer = ClaimRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        system, point = _claim_filters(serializer.validated_data)
        case = claim_next(reviewer=request_user(request), system=system, point=point)
        if case is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(_claimed_body(case))


def _claimed_body(case: Case) -> dict[str, Any]:
    """The claim response for a case just claimed (``POST /queue/claim/``'s 200 body)."""
    payload = claim_payload(case)
    payload.update(claim_extras(case))
    return claim_response(payload, lease_expires_at=case.lease_expires_at)


def _case_or_404(pk: int) -> Case:
    # Only the id: the services re-read the row under a lock.
    return get_object_or_404(Case.objects.only("id"), pk=pk)


class DecisionView(PortalAPIView):
    """``POST /api/v1/cases/{id}/decision/``: the claim holder's verdict, optionally claiming the next case.

    ``claim_next`` (an extension of the contract) does what the workbench's "Decide"
    button does: the decision, then a claim in the given scope, answered together, so a
    reviewer client needs one round trip per case instead of two.
    """

    authentication_classes = PORTAL_AUTHENTICATION
    hot_path_methods = frozenset({"POST"})
    roles = {"POST": {REVIEWER}}

    @extend_schema(
        auth=SCHEMA_AUTH,
        summary="Decide a claimed case",
        request=DecisionRequestSerializer,
        responses={201: DecisionResponseSerializer, 400: OpenApiResponse(description="Invalid verdict"),
                   **CLAIM_ERRORS},
    )
    def post(self, request: Request, pk: int) -> Response:
        serializer = DecisionRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        next_scope = data.get("claim_next")
        next_system: AISystem | None = None
        next_point: InterventionPoint | None = None
        if next_scope is not None:
            # Resolved before the decision, so an unknown slug refuses the whole request (400) and nothing is saved.
            try:
                next_system, next_point = _claim_filters(next_scope)
            except ValidationError as exc:
                raise DRFValidationError({"claim_next": exc.message_dict}) from exc
        # No look-up first: the service's locked read is the existence check (one query less).
        try:
            case = decision_record(
                reviewer=request_user(request), case=Case(pk=pk), outcome=data.get("outcome"), label=data.get("label"),
                rationale=data.get("rationale", ""), form_values=data.get("form_values"),
                text=data.get("text"), arguments=data.get("arguments"), category=data.get("category", ""),
            )
        except ClaimConflict as exc:
            if exc.code_name == "not_found":
                raise Http404("No such case.") from exc
            raise
        body: dict[str, Any] = {"case": case.pk, "case_status": case.status, "final_label": case.final_label}
        if case.payload is not None:
            body["final_output"] = case.final_output
        if next_scope is not None:
            # Its own transaction, after the decision committed: a refused or empty claim leaves the decision standing.
            try:
                following = claim_next(reviewer=request_user(request), system=next_system, point=next_point)
            except ReviewerNotAllowed as exc:
                body["next"] = None
                body["next_refused"] = {"code": exc.code_name, "detail": exc.detail}
            else:
                body["next"] = None if following is None else _claimed_body(following)
        return Response(body, status=status.HTTP_201_CREATED)


class RenewView(PortalAPIView):
    """``POST /api/v1/cases/{id}/renew/``: extend the holder's lease."""

    authentication_classes = PORTAL_AUTHENTICATION
    roles = {"POST": {REVIEWER}}

    @extend_schema(auth=SCHEMA_AUTH, summary="Renew a claim lease", request=None,
                   responses={200: LeaseResponseSerializer, **CLAIM_ERRORS})
    def post(self, request: Request, pk: int) -> Response:
        case = claim_renew(reviewer=request_user(request), case=_case_or_404(pk))
        return Response(LeaseResponseSerializer({"case": case.pk, "lease_expires_at": case.lease_expires_at}).data)


class ReleaseView(PortalAPIView):
    """``POST /api/v1/cases/{id}/release/``: give the case back to the queue."""

    authentication_classes = PORTAL_AUTHENTICATION
    roles = {"POST": {REVIEWER}}

    @extend_schema(auth=SCHEMA_AUTH, summary="Release a claimed case", request=None,
                   responses={200: ReleaseResponseSerializer, **CLAIM_ERRORS})
    def post(self, request: Request, pk: int) -> Response:
        case = claim_release(reviewer=request_user(request), case=_case_or_404(pk))
        return Response({"case": case.pk, "case_status": case.status})


class ReopenView(PortalAPIView):
    """``POST /api/v1/cases/{id}/reopen/``: a decided case goes back to review as escalated."""

    authentication_classes = PORTAL_AUTHENTICATION
    roles = {"POST": {COMPLIANCE_OFFICER}}

    @extend_schema(
        auth=SCHEMA_AUTH,
        summary="Reopen a decided case (Art. 14(4)(d), Art. 86)",
        request=ReopenRequestSerializer,
        responses={200: ReopenResponseSerializer, 400: OpenApiResponse(description="Reason missing"),
                   404: OpenApiResponse(ErrorSerializer, description="No such case"),
                   409: OpenApiResponse(ErrorSerializer, description="The case is not decided"), **ERRORS},
    )
    def post(self, request: Request, pk: int) -> Response:
        serializer = ReopenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        case = case_reopen(
            actor=request_user(request), case=_case_or_404(pk), reason=serializer.validated_data["reason"]
        )
        return Response({"case": case.pk, "case_status": case.status, "review_round": case.review_round})


class AssignView(PortalAPIView):
    """``POST /api/v1/cases/{id}/assign/``: an officer hands an open case to a named reviewer."""

    roles = {"POST": {COMPLIANCE_OFFICER}}

    @extend_schema(
        auth=SCHEMA_AUTH,
        summary="Assign an open case to a reviewer",
        request=AssignRequestSerializer,
        responses={200: AssignResponseSerializer,
                   400: OpenApiResponse(description="Unknown reviewer, one who may not take it, or no reason"),
                   404: OpenApiResponse(ErrorSerializer, description="No such case"),
                   409: OpenApiResponse(ErrorSerializer, description="The case is not open"), **ERRORS},
    )
    def post(self, request: Request, pk: int) -> Response:
        serializer = AssignRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        case = _case_or_404(pk)
        reviewer = User.objects.filter(username=data["reviewer"]).first()
        if reviewer is None:
            raise ValidationError({"reviewer": ["unknown reviewer"]})
        case = case_assign(actor=request_user(request), case=case, reviewer=reviewer, reason=data["reason"])
        return Response(AssignResponseSerializer({
            "case": case.pk, "case_status": case.status, "claimed_by": reviewer.get_username(),
            "lease_expires_at": case.lease_expires_at,
        }).data)
