"""API of accounts: API tokens, users (admin), reviewer competence records."""

from __future__ import annotations

from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle

from hitl_portal.api.pagination import IdCursorPagination
from hitl_portal.api.parsers import StrictJSONParser
from hitl_portal.api.views import PortalAPIView, PortalViewSet
from hitl_portal.permissions import PUBLIC
from hitl_portal.roles import ADMIN, COMPLIANCE_OFFICER
from reviews.api.serializers.accounts import (
    ReviewerSerializer,
    TokenObtainSerializer,
    TokenSerializer,
    UserCreateSerializer,
    UserSerializer,
    WebhookSecretSerializer,
)
from reviews.api.views.systems import BAD_INPUT, ERROR_BODY, NOT_FOUND, READ_ERRORS, WRITE_ERRORS
from reviews.models import ReviewerProfile
from reviews.selectors.people import reviewer_profile_get, user_get, user_list
from reviews.services.people import integration_rotate_secret, reviewer_update, user_create, user_token_issue

USERNAME = OpenApiParameter("username", str, OpenApiParameter.PATH, description="The account's username.")
BAD_CREDENTIALS = "Unable to log in with the provided username and password."


class TokenObtainView(PortalAPIView):
    """Exchange a username and password for an API token.

    Open to anyone, so it is throttled per client address (scope ``auth``) to slow
    password guessing. Inactive accounts get the same answer as a wrong password:
    the endpoint does not tell which accounts exist.
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
        auth=[],
        request=TokenObtainSerializer,
        responses={
            200: TokenSerializer,
            400: BAD_INPUT,
            429: OpenApiResponse(ERROR_BODY, description="Too many attempts from this address (code throttled)."),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = TokenObtainSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = authenticate(
            request=request,
            username=serializer.validated_data["username"],
            password=serializer.validated_data["password"],
        )
        if user is None:  # wrong credentials, or an inactive account (the backend refuses those)
            raise ValidationError({"password": [BAD_CREDENTIALS]})
        token = user_token_issue(user=user)
        return Response({"token": token.key})


class UsernameCursorPagination(IdCursorPagination):
    ordering = "username"


class UserViewSet(PortalViewSet):
    """Accounts and their roles (administrators only)."""

    roles = {"list": {ADMIN}, "create": {ADMIN}, "rotate_secret": {ADMIN}}
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
        user, secret = user_create(actor=request.user, **serializer.validated_data)
        return Response(UserCreateSerializer((user, secret)).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Rotate an integration's webhook secret",
        description="The new secret signs every webhook from now on; it is shown this once.",
        parameters=[USERNAME],
        request=None,
        responses={200: WebhookSecretSerializer, **WRITE_ERRORS, 404: NOT_FOUND},
    )
    def rotate_secret(self, request: Request, username: str) -> Response:
        secret = integration_rotate_secret(actor=request.user, user=user_get(username=username))
        return Response({"webhook_secret": secret})


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

