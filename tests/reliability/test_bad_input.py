"""Out-of-range and unstorable input answers 400 with the field named, never 500 (issue 14,
item 5): integers past 64 bits, strings Postgres cannot store (NUL, lone surrogates), JSON
nested a thousand levels, names longer than a file name may be."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from labeling import services
from tests.labeling.factories import client_for, make_labeler, make_task, solution_body

pytestmark = pytest.mark.django_db

TOO_BIG = 2**63


@pytest.fixture
def leased():
    make_task(steps=3)
    labeler = make_labeler()
    assignment = services.assignment_claim(labeler=labeler)
    return client_for(labeler), assignment


def _raw(client: APIClient, method: str, path: str, body: str):
    return getattr(client, method)(path, body, content_type="application/json")


def _draft(client, assignment, body: str):
    return _raw(client, "put", f"/api/labeling/assignments/{assignment.pk}/draft/", body)


def _fields(response) -> dict:
    assert response.status_code == 400, (response.status_code, response.content[:500])
    return response.json()


@pytest.mark.parametrize("value", [TOO_BIG, 2**64, 10**30])
def test_total_time_past_64_bits_is_a_field_error(leased, value):
    client, assignment = leased
    body = {**solution_body(3), "total_time_ms": value}
    response = _raw(
        client, "post", f"/api/labeling/assignments/{assignment.pk}/submit/", json.dumps(body)
    )
    assert "total_time_ms" in _fields(response)


def test_active_ms_past_64_bits_is_a_field_error(leased):
    client, assignment = leased
    response = _draft(client, assignment, json.dumps({"state": {}, "active_ms": TOO_BIG}))
    assert "active_ms" in _fields(response)


@pytest.mark.parametrize(
    "state",
    ['{"note": "a\\u0000b"}', '{"note": "\\ud800"}', '["\\udfff"]', '{"a\\u0000": 1}'],
    ids=["nul", "lone-high-surrogate", "lone-low-surrogate", "nul-in-key"],
)
def test_draft_state_postgres_cannot_store_is_a_field_error(leased, state):
    client, assignment = leased
    response = _draft(client, assignment, '{"state": ' + state + ', "active_ms": 5}')
    assert "state" in _fields(response)


def test_a_lone_surrogate_in_a_give_up_reason_is_a_field_error(leased):
    client, assignment = leased
    body = '{"reason": "\\ud83d", "total_time_ms": 5, "steps": []}'
    response = _raw(client, "post", f"/api/labeling/assignments/{assignment.pk}/give-up/", body)
    assert "reason" in _fields(response)


@pytest.mark.parametrize("depth", [200, 1000, 5000])
def test_json_nested_deeply_is_refused(leased, depth):
    client, assignment = leased
    state = "[" * depth + "]" * depth
    response = _draft(client, assignment, '{"state": ' + state + ', "active_ms": 5}')
    assert response.status_code == 400, response.content[:300]


def test_a_valid_draft_is_still_saved(leased):
    client, assignment = leased
    response = _draft(
        client, assignment, json.dumps({"state": {"a": [[["é", 1]]]}, "active_ms": 5})
    )
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("length", [256, 300, 5000])
def test_a_base_model_name_longer_than_a_file_name_is_a_field_error(length):
    admin = make_labeler(role="admin")
    client = client_for(admin)
    body = {"name": "v-long", "base_model": "m" * length}
    response = _raw(client, "post", "/api/training/versions/", json.dumps(body))
    assert "base_model" in _fields(response)


def test_ids_past_64_bits_are_field_errors():
    admin = make_labeler(role="admin")
    client = client_for(admin)
    body = {"solution_id": TOO_BIG, "kind": "screening", "gold_ratings": [1]}
    response = _raw(client, "post", "/api/labeling/admin/gold/", json.dumps(body))
    assert "solution_id" in _fields(response)
