"""API routes: accounts (tokens, users, reviewers)."""

from django.urls import path

from reviews.api.views.accounts import (
    ReviewerViewSet,
    TokenDetailView,
    TokenListView,
    TokenObtainView,
    UserViewSet,
)

urlpatterns = [
    path("auth/token/", TokenObtainView.as_view(), name="api-auth-token"),
    path("auth/tokens/", TokenListView.as_view(), name="api-auth-token-list"),
    path("auth/tokens/<str:token_id>/", TokenDetailView.as_view(), name="api-auth-token-detail"),
    path("users/", UserViewSet.as_view({"get": "list", "post": "create"}), name="api-user-list"),
    path(
        "users/<str:username>/rotate-secret/",
        UserViewSet.as_view({"post": "rotate_secret"}),
        name="api-user-rotate-secret",
    ),
    path(
        "users/<str:username>/rotate-token/",
        UserViewSet.as_view({"post": "rotate_token"}),
        name="api-user-rotate-token",
    ),
    path("reviewers/<str:username>/", ReviewerViewSet.as_view({"patch": "partial_update"}), name="api-reviewer-detail"),
]
