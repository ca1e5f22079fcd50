"""API of accounts: API tokens, users (admin), reviewer competence records."""

from __future__ import annotations

from typing import cast

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle

from hitl_portal.actors import request_user
from hitl_portal.api.pagination import IdCursorPagination
from hitl_portal.api.parsers import StrictJSONParser
from hitl_portal.api.schema import paginated
from hitl_portal.api.views import PortalAPIView, PortalViewSet
from hitl_portal.middleware import mfa_required_for
from hitl_portal.permissions import PUBLIC
from hitl_portal.roles import ADMIN, ALL_ROLES, COMPLIANCE_OFFICER, INTEGRATION, user_role
from reviews.api.serializers.accounts import (
    ReviewerSerializer,
    TokenInfoSerializer,
    TokenObtainSerializer,
    TokenRotateSerializer,
    TokenSerializer,
    UserCreateSerializer,
    UserSerializer,
    WebhookSecretSerializer,
)
from reviews.api.views.systems import BAD_INPUT, ERROR_BODY, NOT_FOUND, READ_ERRORS, WRITE_ERRORS
from reviews.models import ReviewerProfile
from reviews.selectors.people import own_token_get, reviewer_profile_get, token_list, user_get, user_list
from reviews.services.identity import mfa_device_for, mfa_verify
from reviews.services.people import integration_rotate_secret, reviewer_update, user_create
from reviews.services.tokens import user_token_issue, user_token_revoke, user_token_rotate

USERNAME = OpenApiParameter("username", str, OpenApiParameter.PATH, description="The account's username.")
BAD_CREDENTIALS = "Unable to log in with the provided username and password."


class LockedOut(exceptions.APIException):
    """429 ``locked_out``: too many failed logins for this user name or from this address."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_detail = "Too many failed logins: locked for the cool-off period."
    default_code = "locked_out"

    def __init__(self) -> None:
        super().__init__()
        self.code_name = "locked_out"
        self.wait = int(settings.AXES_COOLOFF_TIME.total_seconds())


class TokenObtainView(PortalAPIView):
    """Exchange a username and password (and, where required, a TOTP code) for an API token.

    Open to anyone, so it is throttled per client address (scope ``auth``) and shares
    the login lockout of the login pages (django-axes: per user name and per
    address). Inactive accounts get the same answer as a wrong password: the
    endpoint does not tell which accounts exist. JSON or form-encoded.
    """

    authentication_classes: list = []
    roles = {"POST": {PUBLIC}}
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"
    # Form fields too (``curl -d username=… -d password=…``, OAuth-style clients): a new
    # user's first call should not fail on the content type. JSON stays the documented body.
    parser_classes = [StrictJSONParser, FormParser]

    @extend_schema(
        summary="Obtain an API token",
        description="Each call issues a new token, shown once (only its digest is stored). People's tokens "
        "expire `HITL_TOKEN_TTL_HOURS` after their last use; integrations' are long-lived.",
        auth=[],
        request={"application/json": TokenObtainSerializer,
                 "application/x-www-form-urlencoded": TokenObtainSerializer},
        responses={
            200: TokenSerializer,
            400: BAD_INPUT,
            429: OpenApiResponse(ERROR_BODY, description="Too many attempts from this address (code "
                                 "`throttled`), or too many failed logins for this user name or address "
                                 "(code `locked_out`, for the cool-off period)."),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = TokenObtainSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        # The DRF request itself: django-axes counts the attempt and marks a lockout on it.
        user = authenticate(
            request=request,
            username=serializer.validated_data["username"],
            password=serializer.validated_data["password"],
        )
        if getattr(request, "axes_locked_out", False):
            raise LockedOut()
        if user is None:  # wrong credentials, or an inactive account (the backend refuses those)
            raise ValidationError({"password": [BAD_CREDENTIALS]})
        if mfa_required_for(user):
            code = serializer.validated_data.get("otp")
            if not code:
                raise ValidationError({"otp": ["Your role needs the code of your authenticator app."]})
            if mfa_device_for(user) is None:
                raise ValidationError({"otp": ["Enrol a second factor at /accounts/mfa/ first."]})
            if mfa_verify(user=user, code=code) is None:
                raise ValidationError({"otp": ["That code is not valid."]})
        token, key = user_token_issue(user=user)
        return Response({"token": key, "expiry": token.expiry})


class TokenListView(PortalAPIView):
    """Your own API tokens: list them, revoke one."""

    roles = {"GET": set(ALL_ROLES)}

    @extend_schema(summary="List your API tokens",
                   responses={200: paginated("PaginatedTokenInfoList", TokenInfoSerializer(many=True)), **READ_ERRORS})
    def get(self, request: Request) -> Response:
        paginator = TokenCursorPagination()
        page = paginator.paginate_queryset(token_list(user=cast(User, request.user)), request, view=self)
        data = TokenInfoSerializer(page, many=True, context={"auth": request.auth}).data
        return paginator.get_paginated_response(data)


TOKEN_ID = OpenApiParameter("token_id", str, OpenApiParameter.PATH,
                            description="The token's id: the first 15 characters of its key.")


class TokenDetailView(PortalAPIView):
    """Revoke one of your own API tokens (someone else's is a 404)."""

    roles = {"DELETE": set(ALL_ROLES)}

    @extend_schema(summary="Revoke one of your API tokens", parameters=[TOKEN_ID],
                   responses={204: None, **READ_ERRORS, 404: NOT_FOUND})
    def delete(self, request: Request, token_id: str) -> Response:
        user = cast(User, request.user)
        user_token_revoke(actor=user, token=own_token_get(user=user, token_id=token_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenCursorPagination(IdCursorPagination):
    ordering = "-created"


class UsernameCursorPagination(IdCursorPagination):
    ordering = "username"
    numeric_position = False


class UserViewSet(PortalViewSet):
    """Accounts and their roles (administrators only)."""

    roles = {"list": {ADMIN}, "create": {ADMIN}, "rotate_secret": {ADMIN}, "rotate_token": {COMPLIANCE_OFFICER}}
    pagination_class = UsernameCursorPagination
    serializer_class = UserSerializer
    queryset = User.objects.none()  # for the schema generator only; reads go through selectors

    @extend_schema(summary="List users", responses={200: UserSerializer(many=True), **READ_ERRORS})
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(user_list())
        return self.get_paginated_response(UserSerializer(page, many=True).data)

    @extend_schema(
        summary="Create a user",
        description="One role per user. For `integration` users the answer holds `webhook_secret`, shown once.",
        request=UserCreateSerializer,
        responses={201: UserCreateSerializer, **WRITE_ERRORS},
    )
    def create(self, request: Request) -> Response:
        serializer = UserCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user, secret = user_create(actor=request_user(request), **serializer.validated_data)
        return Response(UserCreateSerializer((user, secret)).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Rotate an integration's webhook secret",
        description="The new secret signs every webhook from now on; it is shown this once.",
        parameters=[USERNAME],
        request=None,
        responses={200: WebhookSecretSerializer, **WRITE_ERRORS, 404: NOT_FOUND},
    )
    def rotate_secret(self, request: Request, username: str) -> Response:
        secret = integration_rotate_secret(actor=request_user(request), user=user_get(username=username))
        return Response({"webhook_secret": secret})

    @extend_schema(
        summary="Rotate an integration's API token",
        description="Revokes every token of the integration account and issues a new long-lived one, shown "
        "this once. Audited with the reason (user.token_revoked, user.token_issued).",
        parameters=[USERNAME],
        request=TokenRotateSerializer,
        responses={200: TokenSerializer, **WRITE_ERRORS, 404: NOT_FOUND},
    )
    def rotate_token(self, request: Request, username: str) -> Response:
        serializer = TokenRotateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = user_get(username=username)
        if user_role(user) != INTEGRATION:
            raise ValidationError({"username": ["Only an integration's token is rotated here; people log in."]})
        token, key = user_token_rotate(
            actor=request_user(request), user=user, reason=serializer.validated_data["reason"]
        )
        return Response({"token": key, "expiry": token.expiry})


class ReviewerViewSet(PortalViewSet):
    """Reviewer competence records: suspend or reinstate, qualifications, adjudicator flag."""

    roles = {"partial_update": {COMPLIANCE_OFFICER}}
    serializer_class = ReviewerSerializer
    queryset = ReviewerProfile.objects.none()  # for the schema generator only

    @extend_schema(
        summary="Change a reviewer's status, qualifications or adjudicator flag",
        description="Needs a `reason`; every change is audited (reviewer.suspended, reviewer.reinstated, "
        "reviewer.updated).",
        parameters=[USERNAME],
        request=ReviewerSerializer,
        responses={200: ReviewerSerializer, **WRITE_ERRORS, 404: NOT_FOUND},
    )
    def partial_update(self, request: Request, username: str) -> Response:
        profile = reviewer_profile_get(username=username)
        serializer = ReviewerSerializer(profile, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        reviewer_update(
            actor=request.user,
            profile=profile,
            reason=data.get("reason", ""),
            status=data.get("status"),
            qualifications=data.get("qualifications"),
            adjudicator=data.get("adjudicator"),
        )
        return Response(ReviewerSerializer(reviewer_profile_get(username=username)).data)

