"""API routes of the compliance app."""

from django.urls import path  # noqa: F401

urlpatterns: list = []
