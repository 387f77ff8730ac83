"""Roles: every signed-in person with a Labeler row may label; admins may also administer."""

from __future__ import annotations

from rest_framework.permissions import BasePermission


def _labeler(request):
    user = request.user
    if not (user and user.is_authenticated and user.is_active):
        return None
    # Cached on the request: every labeling endpoint needs it, one query is enough.
    if not hasattr(request, "_stepwise_labeler"):
        from labeling.models import Labeler

        request._stepwise_labeler = Labeler.objects.filter(user_id=user.pk).first()
    return request._stepwise_labeler


class IsLabeler(BasePermission):
    """A signed-in, active user with a labeler account (either role)."""

    message = "A labeler account is required."

    def has_permission(self, request, view) -> bool:
        return _labeler(request) is not None


class IsStepwiseAdmin(BasePermission):
    """A stepwise admin: role ``admin`` or a Django superuser."""

    message = "Only stepwise admins may do this."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        if user.is_superuser:
            return True
        labeler = _labeler(request)
        return labeler is not None and labeler.is_admin
