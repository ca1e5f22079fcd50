"""Pages of the fairness app."""

from django.urls import path  # noqa: F401

app_name = "fairness"
urlpatterns: list = []
