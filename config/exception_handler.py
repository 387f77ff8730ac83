"""The one DRF exception handler (settings ``REST_FRAMEWORK["EXCEPTION_HANDLER"]``).

It answers every app's domain errors (``config.errors.StepwiseError``) with their own status and
body, and Django's ``ValidationError`` from model validation as a 400 in the same shapes;
everything else goes to DRF's handler unchanged. No view translates errors itself.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from config.errors import StepwiseError


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's exception handler, answering ``StepwiseError`` and Django's ``ValidationError``."""
    if isinstance(exc, StepwiseError):
        return Response(exc.body(), status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            return Response(exc.message_dict, status=400)
        return Response({"detail": " ".join(exc.messages)}, status=400)
    return drf_exception_handler(exc, context)
