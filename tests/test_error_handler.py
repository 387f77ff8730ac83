"""One error type, one handler: every app's domain errors answer in the same two shapes."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import NotFound

from active_learning.services import RoundConflict, RoundError
from config.errors import StepwiseError
from config.exception_handler import exception_handler
from labeling.imports.common import ImportFileEmpty, ImportLineError
from labeling.services import DraftConflict, LabelingInvalid, LeaseLost, NotYourAssignment
from training.generator import GeneratorError
from training.sampling import SamplingError
from training.services import TrainingError


def _answer(exc: Exception) -> tuple[int, object]:
    response = exception_handler(exc, {})
    assert response is not None
    return response.status_code, response.data


def test_the_handler_is_the_one_in_settings():
    handler = settings.REST_FRAMEWORK["EXCEPTION_HANDLER"]
    assert handler == "config.exception_handler.exception_handler"


@pytest.mark.parametrize(
    "error_type",
    [LabelingInvalid, RoundError, TrainingError, SamplingError, GeneratorError, ImportLineError],
)
def test_every_domain_error_is_a_stepwise_error(error_type):
    assert issubclass(error_type, StepwiseError)


def test_field_errors_are_field_level_400s():
    fields = {"ratings": ["must have one rating per step"]}
    assert _answer(LabelingInvalid(fields)) == (400, fields)
    assert _answer(RoundError({"size": ["must be at least 1"]})) == (
        400,
        {"size": ["must be at least 1"]},
    )


def test_other_errors_are_a_detail_with_their_status_and_code():
    assert _answer(TrainingError("v1 is already being trained")) == (
        400,
        {"detail": "v1 is already being trained"},
    )
    assert _answer(NotYourAssignment("not yours")) == (403, {"detail": "not yours"})
    assert _answer(LeaseLost("expired")) == (409, {"detail": "expired", "code": "lease_lost"})
    assert _answer(DraftConflict("newer")) == (409, {"detail": "newer", "code": "draft_conflict"})
    assert _answer(GeneratorError("server down")) == (
        503,
        {"detail": "server down", "code": "generator_error"},
    )
    conflict = RoundConflict({"state": ["round 3 is finished", "and cannot pause"]})
    assert _answer(conflict) == (409, {"detail": "round 3 is finished and cannot pause"})


def test_import_errors_name_the_line():
    bad = ImportLineError(3, "label.steps", "expected a list")
    assert _answer(bad) == (400, {"line": 3, "field": "label.steps", "detail": "expected a list"})
    status, body = _answer(ImportFileEmpty())
    assert status == 400 and list(body) == ["file"]


def test_django_validation_errors_use_the_same_shapes_and_the_rest_goes_to_drf():
    assert _answer(DjangoValidationError({"name": ["taken"]})) == (400, {"name": ["taken"]})
    assert _answer(DjangoValidationError("bad value")) == (400, {"detail": "bad value"})
    assert _answer(NotFound("no such round")) == (404, {"detail": "no such round"})
