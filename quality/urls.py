"""Pages of the quality app."""

from django.urls import path  # noqa: F401

app_name = "quality"
urlpatterns: list = []
