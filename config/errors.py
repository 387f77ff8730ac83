"""The one application error type and the one DRF exception handler that answers for it.

Every app's domain errors (``LabelingError``, ``RoundError``, ``TrainingError``, ...) subclass
``StepwiseError``; services raise them and know nothing of HTTP. Each error class says how it is
answered: ``status_code``, an optional public ``code`` for clients that branch on it
(``lease_lost``, ``draft_conflict``), and its body, in one of two shapes (the shapes DRF itself
uses):

- field-level: ``{"field": ["message", ...], ...}`` (400s from bad input);
- otherwise: ``{"detail": "message"}``, plus ``"code"`` when the error has one.

``config.exception_handler`` (settings ``REST_FRAMEWORK["EXCEPTION_HANDLER"]``) turns them into
responses. This module is plain Python and imports no stepwise app, so every app may use it, the
Django-free generator included.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar


class StepwiseError(Exception):
    """A request the domain refuses; answered as ``status_code`` with ``body()``.

    ``fields`` maps a field name to its messages (field-level errors); without fields the message
    is the error's text.
    """

    status_code: ClassVar[int] = 400
    code: ClassVar[str | None] = None

    def __init__(self, message: str = "", *, fields: Mapping[str, Sequence[str]] | None = None):
        self.fields: dict[str, list[str]] = {k: list(v) for k, v in (fields or {}).items()}
        if not message and self.fields:
            message = "; ".join(f"{k}: {' '.join(v)}" for k, v in self.fields.items())
        super().__init__(message)

    @property
    def message(self) -> str:
        return str(self)

    def body(self) -> dict[str, Any]:
        if self.fields:
            return dict(self.fields)
        body: dict[str, Any] = {"detail": self.message}
        if self.code:
            body["code"] = self.code
        return body
