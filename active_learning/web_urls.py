"""The admin console's browser pages (round and PRM dashboards)."""

from django.urls import path  # noqa: F401

urlpatterns: list = []
