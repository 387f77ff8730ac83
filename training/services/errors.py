"""Errors of the training services, and the JSON clean-up every stored metric goes through."""

from __future__ import annotations

import json
import math
from typing import Any

from config.errors import StepwiseError


class TrainingError(StepwiseError):
    """A domain error: shown to the admin as it is (400 in the API, ``{"detail": message}``)."""


class PromotionRefused(TrainingError):
    pass


class ImproperlyConfiguredRule(TrainingError):
    pass


def json_safe(value: Any) -> Any:
    """Metrics as Postgres jsonb accepts them: NaN and infinities become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True
