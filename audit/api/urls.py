"""API routes of the audit app."""

from django.urls import path  # noqa: F401

urlpatterns: list = []
