"""Property-based requests over the OpenAPI schema (schemathesis), as an admin and as a labeler:
no answer is a server error, and every answer (status code, content type, body) is what the
schema documents. The budget per operation is bounded (STEPWISE_SCHEMATHESIS_EXAMPLES, default
8, for each role) and the examples are derandomized and not shrunk, so a run is repeatable and
bounded: about 700 requests, a few minutes on a busy 2-core machine (slow tier)."""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.labeling.factories import make_labeler, make_task

EXAMPLES = int(os.environ.get("STEPWISE_SCHEMATHESIS_EXAMPLES", "8"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _load_schema():
    from drf_spectacular.generators import SchemaGenerator

    from config.wsgi import application

    document = SchemaGenerator().get_schema(request=None, public=True)
    loaded = schemathesis.openapi.from_dict(document)
    loaded.app = application  # requests go through Django's whole stack, in this process
    return loaded


schema = _load_schema()


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """As Django's test client does: a request must not close the test's database connection
    (it holds the test transaction)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def tokens(db) -> dict[str, str]:
    make_task(steps=3)
    make_task(steps=2)
    admin, labeler = make_labeler(role="admin"), make_labeler()
    return {
        role: Token.objects.get_or_create(user=who.user)[0].key
        for role, who in (("admin", admin), ("labeler", labeler))
    }


@pytest.mark.slow
@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    # No shrinking: a failure is reported as found, so a failing run stays within the budget.
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_api_answers_as_documented(case, tokens):
    for key in tokens.values():
        case.call_and_validate(
            headers={"Authorization": f"Token {key}"}, checks=CHECKS, excluded_checks=None
        )
