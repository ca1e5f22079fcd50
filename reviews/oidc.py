"""OpenID Connect single sign-on (mozilla-django-oidc), with the portal's role mapping.

Configured entirely by environment (``OIDC_*`` and ``HITL_OIDC_*``, see the
README); off unless ``OIDC_RP_CLIENT_ID`` is set, and then the views below answer
404. A person is matched by the username claim to an account that was itself made
by SSO (no usable password): a local account with a password, such as the embedded
default's administrator, is never taken over by an identity provider's claim. New
people get an account just in time, with the role their claims map to.
"""

from __future__ import annotations

import logging
from typing import Any

import jwt
import requests
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import SuspiciousOperation, ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from hitl_portal.permissions import PUBLIC
from reviews.services.identity import role_from_claims, sso_user_provision, sso_user_sync, username_from_claims

logger = logging.getLogger(__name__)


class PortalOIDCBackend(OIDCAuthenticationBackend):
    """Claims → account: match SSO-made accounts by username, create just in time, follow the role."""

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        return username_from_claims(claims) is not None and role_from_claims(claims) is not None

    def filter_users_by_claims(self, claims: dict[str, Any]) -> QuerySet[User]:
        username = username_from_claims(claims)
        if username is None:
            return User.objects.none()
        # Unusable passwords start with "!": only accounts that SSO made (or that an admin
        # handed to SSO by removing the password) are signed into by the identity provider.
        return User.objects.filter(username=username, password__startswith="!")

    def create_user(self, claims: dict[str, Any]) -> User | None:
        try:
            return sso_user_provision(claims=claims)
        except ValidationError:
            return None

    def update_user(self, user: User, claims: dict[str, Any]) -> User | None:
        try:
            return sso_user_sync(user=user, claims=claims)
        except ValidationError:
            return None


class _OnlyWhenEnabled:
    # Anyone may start or finish a sign-on (the permission layer's declaration).
    roles = {"GET": {PUBLIC}}

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.OIDC_ENABLED:
            raise Http404("Single sign-on is not configured.")
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]


class SSOStartView(_OnlyWhenEnabled, OIDCAuthenticationRequestView):
    """Redirects to the identity provider (state, nonce and PKCE kept in the session)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The parent reads its settings here; unconfigured, dispatch answers 404 first.
        if settings.OIDC_ENABLED:
            super().__init__(*args, **kwargs)
        else:
            super(OIDCAuthenticationRequestView, self).__init__(*args, **kwargs)


class SSOCallbackView(_OnlyWhenEnabled, OIDCAuthenticationCallbackView):
    """The identity provider sends the browser back here with a code; the backend logs the person in.

    A provider that is down or answers with something unverifiable (bad signature,
    unknown key, malformed JSON) is a failed login on the login page, never a 500.
    """

    def get(self, request: HttpRequest) -> HttpResponse:
        try:
            return super().get(request)
        except (requests.RequestException, SuspiciousOperation, jwt.PyJWTError, KeyError, ValueError):
            logger.warning("single sign-on failed at the callback", exc_info=True)
            return self.login_failure()
