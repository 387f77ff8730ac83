"""Claim and submit, the hot path, written in SQL (labeling/services.py, "SQL on the hot path"):
their answers are the serializers' answers, their rows the ORM's, and their cost stays fixed."""

from __future__ import annotations

import pytest

from labeling import selectors, services
from labeling.apis import ClaimOutput, SubmitOutput, claim_body
from labeling.models import Assignment, Labeling
from tests.labeling.factories import (
    client_for,
    make_generation,
    make_labeler,
    make_task,
    solution_body,
)

pytestmark = pytest.mark.django_db

# Token, labeler, BEGIN, own leases, active rounds, candidate, its slots, insert, COMMIT, payload.
CLAIM_QUERIES = 10
# Token, labeler, BEGIN, task lock, assignment lock, steps, labeling with its steps and
# completions and the assignment, prefetched lease, task done, COMMIT.
SUBMIT_QUERIES = 10


def test_claim_answer_is_the_claim_serializers_answer():
    generation = make_generation()
    make_task(generation, steps=3, alternatives={1: 2})
    make_task(generation, steps=2)
    labeler = make_labeler()
    assignment = services.assignment_claim(labeler=labeler)
    services.assignment_save_draft(
        assignment_id=assignment.pk,
        labeler=labeler,
        state={"ratings": [1, None], "rev": 3, "text": "é ∑"},
        active_ms=1234,
    )
    prefetched = services.assignment_prefetch(labeler=labeler, current_id=assignment.pk)
    for held in (services.assignment_claim(labeler=labeler), prefetched):
        payload = selectors.assignment_payload(assignment=held)
        assert claim_body(payload) == ClaimOutput({"assignment": payload}).data
    response = client_for(labeler).post("/api/labeling/claim/")
    assert response.json()["assignment"]["draft"]["state"]["text"] == "é ∑"
    assert [len(s["alternatives"]) for s in response.json()["assignment"]["steps"]] == [0, 2, 0]


def test_submit_answer_is_the_submit_serializers_answer():
    generation = make_generation()
    make_task(generation, steps=2)
    make_task(generation, steps=2)
    labeler = make_labeler()
    client = client_for(labeler)
    assignment = client.post("/api/labeling/claim/").json()["assignment"]
    response = client.post(
        f"/api/labeling/assignments/{assignment['id']}/submit/",
        {**solution_body(2), "claim_next": True},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert body == SubmitOutput(body).data
    assert set(body) == {"labeling_id", "finish_reason", "next"}
    assert Labeling.objects.get(pk=body["labeling_id"]).finish_reason == "solution"


def test_rows_read_in_sql_are_the_orms_instances():
    labeler = make_labeler()
    make_task(make_generation(qc_rate=0.0), steps=2)
    assignment = services.assignment_claim(labeler=labeler)
    services.assignment_save_draft(
        assignment_id=assignment.pk, labeler=labeler, state={"r": [1]}, active_ms=5
    )
    with services.transaction.atomic():
        (raw,) = services._lock_assignments("a.id = %s", [assignment.pk], labeler=labeler)
    orm = Assignment.objects.select_related("task__generation").get(pk=assignment.pk)
    for model_a, model_b in (
        (raw, orm),
        (raw.task, orm.task),
        (raw.task.generation, orm.task.generation),
    ):
        fields = type(model_a)._meta.concrete_fields
        assert [getattr(model_a, f.attname) for f in fields] == [
            getattr(model_b, f.attname) for f in fields
        ]
    assert raw.draft_state == {"r": [1]}
    assert raw.labeler is labeler  # attached, not fetched again


def test_claim_and_submit_cost_a_fixed_number_of_statements(django_assert_max_num_queries):
    generation = make_generation()
    for _ in range(40):
        make_task(generation, steps=4, required=2)
    for labeler in (make_labeler(), make_labeler()):
        client = client_for(labeler)
        with django_assert_max_num_queries(CLAIM_QUERIES):
            response = client.post("/api/labeling/claim/")
        assert response.status_code == 200
        assignment_id = response.json()["assignment"]["id"]
        with django_assert_max_num_queries(SUBMIT_QUERIES):
            response = client.post(
                f"/api/labeling/assignments/{assignment_id}/submit/",
                solution_body(4),
                format="json",
            )
        assert response.status_code == 201
