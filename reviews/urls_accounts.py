"""Pages of one's own account under /accounts/: second factor, API tokens, single sign-on."""

from django.urls import path

from reviews import oidc, views_accounts

urlpatterns = [
    path("mfa/", views_accounts.MFASetupView.as_view(), name="mfa_setup"),
    path("mfa/verify/", views_accounts.MFAVerifyView.as_view(), name="mfa_verify"),
    path("tokens/", views_accounts.TokensView.as_view(), name="account_tokens"),
    # The names mozilla-django-oidc reverses.
    path("sso/login/", oidc.SSOStartView.as_view(), name="oidc_authentication_init"),
    path("sso/callback/", oidc.SSOCallbackView.as_view(), name="oidc_authentication_callback"),
]
