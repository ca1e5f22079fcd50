"""Pages of the audit app: the published verification key (mounted in the ``audit`` namespace)."""

from django.urls import path

from audit import views_keys

urlpatterns = [
    path("public-key/", views_keys.public_key_page, name="public_key"),
]
