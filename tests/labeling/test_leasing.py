"""Claiming, leases, expiry, redundancy N and the order work is served in."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.test import override_settings
from django.utils import timezone

from labeling import services
from labeling.models import Assignment, LabelingTask
from tests.labeling.factories import (
    client_for,
    make_generation,
    make_labeler,
    make_task,
    solution_body,
)

pytestmark = pytest.mark.django_db


def claim(labeler):
    return services.assignment_claim(labeler=labeler)


def test_claim_returns_the_contract_payload_and_204_when_empty():
    task = make_task(steps=2, alternatives={1: 2})
    client = client_for(make_labeler())
    response = client.post("/api/labeling/claim/")
    assert response.status_code == 200
    body = response.json()["assignment"]
    assert set(body) == {"id", "lease_expires_at", "problem", "steps", "draft", "progress"}
    assert body["problem"] == {
        "text": task.solution.problem.text,
        "reference_answer": "2",
    }
    assert body["steps"] == [
        {"position": 0, "text": "step 0", "alternatives": []},
        {
            "position": 1,
            "text": "step 1",
            "alternatives": [
                {"position": 1, "text": "alt 1.1"},
                {"position": 2, "text": "alt 1.2"},
            ],
        },
    ]
    assert body["draft"] is None
    submitted = client.post(
        f"/api/labeling/assignments/{body['id']}/submit/", solution_body(2), format="json"
    )
    assert submitted.status_code == 201, submitted.content
    empty = client.post("/api/labeling/claim/")
    assert empty.status_code == 204
    assert empty.content == b""


def test_returning_labeler_gets_their_open_assignment_first():
    make_task()
    make_task()
    labeler = make_labeler()
    first = claim(labeler)
    again = claim(labeler)
    assert again.pk == first.pk
    assert Assignment.objects.filter(labeler=labeler).count() == 1


def test_lease_lasts_the_configured_time_and_heartbeat_extends_it():
    make_task()
    labeler = make_labeler()
    with override_settings(STEPWISE_LEASE_SECONDS=120):
        assignment = claim(labeler)
        left = (assignment.lease_expires_at - timezone.now()).total_seconds()
        assert 110 < left <= 120
        Assignment.objects.filter(pk=assignment.pk).update(
            lease_expires_at=timezone.now() + timedelta(seconds=5)
        )
        response = client_for(labeler).post(f"/api/labeling/assignments/{assignment.pk}/heartbeat/")
    assert response.status_code == 200
    assignment.refresh_from_db()
    assert (assignment.lease_expires_at - timezone.now()).total_seconds() > 110


def expire(assignment):
    Assignment.objects.filter(pk=assignment.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )


def test_expired_lease_returns_to_the_queue_and_the_old_holder_gets_409():
    task = make_task(required=1)
    alice, bob = make_labeler(), make_labeler()
    held = claim(alice)
    assert claim(bob) is None  # the only slot is leased
    expire(held)
    taken = claim(bob)
    assert taken is not None and taken.task_id == task.pk and taken.slot == 0
    held.refresh_from_db()
    assert held.state == Assignment.State.EXPIRED
    for path in ("heartbeat/", "submit/"):
        response = client_for(alice).post(
            f"/api/labeling/assignments/{held.pk}/{path}", solution_body(3), format="json"
        )
        assert response.status_code == 409
        assert response.json()["code"] == "lease_lost"


def test_own_lapsed_lease_not_yet_swept_is_renewed_with_its_draft():
    make_task()
    labeler = make_labeler()
    assignment = claim(labeler)
    client = client_for(labeler)
    saved = client.put(
        f"/api/labeling/assignments/{assignment.pk}/draft/",
        {"state": {"ratings": [1, 0]}, "active_ms": 4200},
        format="json",
    )
    assert saved.status_code == 200
    expire(assignment)
    body = client.post("/api/labeling/claim/").json()["assignment"]
    assert body["id"] == assignment.pk
    assert body["draft"]["state"] == {"ratings": [1, 0]}
    assert body["draft"]["active_ms"] == 4200


def test_swept_lease_reclaimed_by_the_same_labeler_keeps_the_draft():
    make_task()
    labeler = make_labeler()
    assignment = claim(labeler)
    services.assignment_save_draft(
        assignment_id=assignment.pk, labeler=labeler, state={"k": 1}, active_ms=10
    )
    expire(assignment)
    assert services.leases_expire() == 1
    again = claim(labeler)
    assert again.pk != assignment.pk
    assert again.draft_state == {"k": 1}


def test_redundancy_n_serves_a_task_to_n_different_labelers_only():
    task = make_task(required=3)
    labelers = [make_labeler() for _ in range(4)]
    got = [claim(labeler) for labeler in labelers]
    assert [a.task_id for a in got[:3]] == [task.pk] * 3
    assert sorted(a.slot for a in got[:3]) == [0, 1, 2]
    assert got[3] is None
    for labeler, assignment in zip(labelers[:3], got[:3], strict=True):
        services.assignment_submit(
            assignment_id=assignment.pk, labeler=labeler, **_solution_kwargs(3)
        )
    task.refresh_from_db()
    assert task.state == LabelingTask.State.DONE
    assert task.labelings.count() == 3
    # A labeler never gets the same solution twice.
    make_generation()
    assert claim(labelers[0]) is None


def _solution_kwargs(steps):
    body = solution_body(steps)
    return {
        "finish_reason": body["finish_reason"],
        "reason": "",
        "total_time_ms": body["total_time_ms"],
        "steps": body["steps"],
    }


def test_a_labeler_never_gets_a_solution_they_labeled_in_another_generation():
    first = make_task(required=2)
    labeler = make_labeler()
    assignment = claim(labeler)
    services.assignment_submit(assignment_id=assignment.pk, labeler=labeler, **_solution_kwargs(3))
    LabelingTask.objects.create(
        solution=first.solution, generation=make_generation(), labelings_required=1
    )
    assert claim(labeler) is None


def test_database_refuses_over_assignment_and_double_labeling():
    task = make_task(required=2)
    a, b, c = make_labeler(), make_labeler(), make_labeler()
    lease = timezone.now() + timedelta(minutes=5)

    def insert(labeler, slot, slots=2):
        with transaction.atomic():
            Assignment.objects.create(
                task=task,
                labeler=labeler,
                task_kind="regular",
                slots=slots,
                slot=slot,
                lease_expires_at=lease,
            )

    insert(a, 0)
    with pytest.raises(IntegrityError):
        insert(b, 0)  # slot already held
    with pytest.raises(IntegrityError):
        insert(b, 2)  # beyond N
    with pytest.raises(IntegrityError):
        insert(b, 2, slots=3)  # slots must equal the task's N
    insert(b, 1)
    with pytest.raises(IntegrityError):
        insert(c, 1)
    # Lowering N under a held slot is refused too (the composite key re-checks the slot).
    with pytest.raises(IntegrityError), transaction.atomic():
        LabelingTask.objects.filter(pk=task.pk).update(labelings_required=1)
    other = make_task(required=3)
    with pytest.raises(IntegrityError), transaction.atomic():
        Assignment.objects.create(
            task=other, labeler=a, task_kind="regular", slots=3, slot=0, lease_expires_at=lease
        )  # a already holds an open lease


def test_order_generation_then_priority_then_oldest():
    older = make_generation(2000)
    newer = make_generation(2001)
    late = make_task(newer, priority=100)
    low = make_task(older, priority=0)
    high = make_task(older, priority=5)
    low_later = make_task(older, priority=0)
    order = []
    labeler = make_labeler()
    for _ in range(4):
        assignment = claim(labeler)
        order.append(assignment.task_id)
        services.assignment_submit(
            assignment_id=assignment.pk, labeler=labeler, **_solution_kwargs(3)
        )
    assert order == [high.pk, low.pk, low_later.pk, late.pk]


def test_only_active_generations_are_served():
    paused = make_generation(state="paused")
    make_task(paused)
    labeler = make_labeler()
    assert claim(labeler) is None
    paused.state = "active"
    paused.save()
    assert claim(labeler) is not None


def test_qc_items_go_to_every_labeler_once_at_the_generation_rate():
    generation = make_generation(qc_rate=1.0)
    qc = make_task(generation, kind="qc", gold=[1, 1, 1], required=1)
    regular = make_task(generation, required=5)
    labelers = [make_labeler() for _ in range(3)]
    for labeler in labelers:  # rate 1.0: QC first, for every labeler, despite N = 1
        assignment = claim(labeler)
        assert assignment.task_id == qc.pk and assignment.slot is None
        services.assignment_submit(
            assignment_id=assignment.pk, labeler=labeler, **_solution_kwargs(3)
        )
        assert claim(labeler).task_id == regular.pk  # QC already done by this labeler
    assert qc.labelings.filter(is_quality_control=True).count() == 3


def test_qc_rate_zero_serves_regular_work_first_and_qc_after():
    generation = make_generation(qc_rate=0.0)
    qc = make_task(generation, kind="qc", gold=[1, 1, 1])
    regular = make_task(generation)
    labeler = make_labeler()
    first = claim(labeler)
    assert first.task_id == regular.pk
    services.assignment_submit(assignment_id=first.pk, labeler=labeler, **_solution_kwargs(3))
    assert claim(labeler).task_id == qc.pk


def test_withdraw_removes_only_untouched_tasks():
    generation = make_generation()
    leased = make_task(generation)
    untouched = make_task(generation)
    labeler = make_labeler()
    assert claim(labeler).task_id == leased.pk
    assert services.tasks_withdraw(generation_id=generation.pk) == 1
    leased.refresh_from_db()
    untouched.refresh_from_db()
    assert leased.state == LabelingTask.State.OPEN
    assert untouched.state == LabelingTask.State.CANCELLED
    assert services.tasks_withdraw(generation_id=generation.pk, state="paused") == 0
    # A cancelled task's lease is lost.
    LabelingTask.objects.filter(pk=leased.pk).update(state="cancelled")
    response = client_for(labeler).post(
        f"/api/labeling/assignments/{Assignment.objects.get(labeler=labeler).pk}/heartbeat/"
    )
    assert response.status_code == 409


def test_withdraw_pause_and_resume():
    generation = make_generation()
    make_task(generation)
    assert services.tasks_withdraw(generation_id=generation.pk, state="paused") == 1
    labeler = make_labeler()
    assert claim(labeler) is None
    assert services.tasks_resume(generation_id=generation.pk) == 1
    assert claim(labeler) is not None


# The statement count of one claim (test_hot_path.py itemises it): it must not grow with the queue.
CLAIM_QUERIES = 10


def test_claim_cost_does_not_grow_with_the_queue(django_assert_max_num_queries):
    """The hot path: a claim is a fixed number of short queries, however long the queue."""
    generation = make_generation()
    for _ in range(3):
        make_task(generation)
    first, second = make_labeler(), make_labeler()
    client = client_for(first)
    with django_assert_max_num_queries(CLAIM_QUERIES):
        assert client.post("/api/labeling/claim/").status_code == 200
    for _ in range(30):
        make_task(generation)
    client = client_for(second)
    with django_assert_max_num_queries(CLAIM_QUERIES):
        assert client.post("/api/labeling/claim/").status_code == 200


def test_schema_lists_the_labeling_endpoints():
    response = client_for(make_labeler()).get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in [
        "/api/labeling/claim/",
        "/api/labeling/assignments/{assignment_id}/heartbeat/",
        "/api/labeling/assignments/{assignment_id}/draft/",
        "/api/labeling/assignments/{assignment_id}/submit/",
        "/api/labeling/assignments/{assignment_id}/give-up/",
        "/api/labeling/assignments/{assignment_id}/report-bad-problem/",
        "/api/labeling/me/",
    ]:
        assert path in paths


def test_lowering_n_is_allowed_over_expired_history_only():
    task = make_task(required=3)
    holders = [make_labeler() for _ in range(3)]
    leases = [claim(labeler) for labeler in holders]
    assert sorted(a.slot for a in leases) == [0, 1, 2]
    with pytest.raises(IntegrityError), transaction.atomic():
        LabelingTask.objects.filter(pk=task.pk).update(labelings_required=2)
    expire(next(a for a in leases if a.slot == 2))
    services.leases_expire()
    LabelingTask.objects.filter(pk=task.pk).update(labelings_required=2)
    assert Assignment.objects.get(task=task, slot=2).slots == 2  # cascaded, row kept
    assert claim(make_labeler()) is None  # both remaining slots are held
