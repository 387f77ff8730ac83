"""Roles, written once: every signed-in person with a Labeler row may label; stepwise admins may
also administer.

A **stepwise admin** is an active, signed-in user who is a Django superuser or whose labeler role
is ``admin``. That one rule guards every admin API (``IsStepwiseAdmin``) and every console page
(``require_stepwise_admin``), and decides where ``/`` sends a person. ``is_staff`` alone does not
make a stepwise admin: it opens Django's own ``/admin/`` site (limited there by Django's model
permissions), nothing else.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from rest_framework.permissions import BasePermission

from labeling.models import Labeler


def _labeler(request: Any) -> Labeler | None:
    user = request.user
    if not (user and user.is_authenticated and user.is_active):
        return None
    # Cached on the request: every labeling endpoint needs it, one query is enough.
    if not hasattr(request, "_stepwise_labeler"):
        request._stepwise_labeler = Labeler.objects.filter(user_id=user.pk).first()
    return request._stepwise_labeler


def is_stepwise_admin(request: Any) -> bool:
    """The stepwise-admin rule (see the module docstring) for the request's user."""
    user = request.user
    if not (user and user.is_authenticated and user.is_active):
        return False
    if user.is_superuser:
        return True
    labeler = _labeler(request)
    return labeler is not None and labeler.is_admin


def require_stepwise_admin(request: HttpRequest) -> None:
    """For console pages (after ``login_required``): 403 unless the user is a stepwise admin."""
    if not is_stepwise_admin(request):
        raise PermissionDenied("Only stepwise admins may open the console.")


class IsLabeler(BasePermission):
    """A signed-in, active user with a labeler account (either role)."""

    message = "A labeler account is required."

    def has_permission(self, request, view) -> bool:
        return _labeler(request) is not None


class IsStepwiseAdmin(BasePermission):
    """Every admin API: a stepwise admin (superuser or labeler role ``admin``)."""

    message = "Only stepwise admins may do this."

    def has_permission(self, request, view) -> bool:
        return is_stepwise_admin(request)
