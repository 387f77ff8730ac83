"""Submitting: the contract's rules per finish reason, what is stored, idempotency, 403/409."""

from __future__ import annotations

import pytest

from labeling import services
from labeling.models import Assignment, LabeledCompletion, Labeling
from tests.labeling.factories import client_for, make_labeler, make_task, solution_body

pytestmark = pytest.mark.django_db


@pytest.fixture
def leased():
    """A labeler holding a 4-step task whose step 2 has two alternatives."""
    task = make_task(steps=4, alternatives={2: 2})
    labeler = make_labeler()
    assignment = services.assignment_claim(labeler=labeler)
    return labeler, assignment, client_for(labeler), task


def submit(client, assignment, body, action="submit"):
    return client.post(f"/api/labeling/assignments/{assignment.pk}/{action}/", body, format="json")


def found_error_body():
    return {
        "finish_reason": "found_error",
        "reason": "",
        "total_time_ms": 9000,
        "steps": [
            {"position": 0, "rating": 1, "flagged": False},
            {"position": 1, "rating": 0, "flagged": True},
            {
                "position": 2,
                "rating": -1,
                "flagged": False,
                "alternatives": [
                    {"position": 1, "rating": 1, "flagged": False},
                    {"position": 2, "rating": -1, "flagged": True},
                ],
            },
        ],
    }


def test_found_error_is_stored_whole_as_prm800k_phase_2(leased):
    labeler, assignment, client, task = leased
    response = submit(client, assignment, found_error_body())
    assert response.status_code == 201, response.content
    labeling = Labeling.objects.get(pk=response.json()["labeling_id"])
    assert response.json() == {"labeling_id": labeling.pk, "finish_reason": "found_error"}
    assert labeling.labeler == labeler and labeling.task == task
    assert labeling.generation_id == task.generation_id
    assert labeling.source == "workspace" and labeling.total_time_ms == 9000
    assert not labeling.is_quality_control and not labeling.is_screening
    steps = list(labeling.steps.order_by("position"))
    assert [s.chosen_completion for s in steps] == [0, 0, None]
    completions = [
        (c.labeled_step.position, c.position, c.text, c.rating, c.flagged)
        for c in LabeledCompletion.objects.filter(labeled_step__labeling=labeling).order_by(
            "labeled_step__position", "position"
        )
    ]
    assert completions == [
        (0, 0, "step 0", 1, False),
        (1, 0, "step 1", 0, True),
        (2, 0, "step 2", -1, False),
        (2, 1, "alt 2.1", 1, False),
        (2, 2, "alt 2.2", -1, True),
    ]
    assignment.refresh_from_db()
    assert assignment.state == Assignment.State.SUBMITTED


def test_retried_submit_returns_the_first_result(leased):
    _, assignment, client, _ = leased
    first = submit(client, assignment, found_error_body())
    again = submit(client, assignment, found_error_body())
    other_body = submit(client, assignment, solution_body(4))
    assert first.status_code == 201
    assert again.status_code == 200 and other_body.status_code == 200
    assert again.json() == first.json() == other_body.json()
    assert Labeling.objects.filter(task=assignment.task).count() == 1


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (lambda b: b["steps"][1].update(rating=-1), "steps", "first and only -1"),
        (lambda b: b["steps"][2]["alternatives"].pop(), "steps", "rate every alternative"),
        (lambda b: b["steps"][2]["alternatives"][0].update(rating=None), "steps", "rate every"),
        (lambda b: b["steps"][0].update(alternatives=[{"position": 1, "rating": 1}]), "steps", ""),
        (lambda b: b["steps"][1].update(rating=None), "steps", "up to the error rated"),
        (lambda b: b["steps"].pop(0), "steps", "positions 0, 1, 2"),
        (lambda b: b["steps"][0].update(rating=2), "steps", ""),
        (lambda b: b.update(total_time_ms=-1), "total_time_ms", ""),
        (lambda b: b.update(finish_reason="done"), "finish_reason", ""),
    ],
)
def test_found_error_rules_answer_400_per_field_and_store_nothing(leased, change, field, message):
    _, assignment, client, _ = leased
    body = found_error_body()
    change(body)
    response = submit(client, assignment, body)
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert message in str(response.json()[field])
    assert Labeling.objects.count() == 0
    assignment.refresh_from_db()
    assert assignment.state == Assignment.State.ACTIVE


def test_solution_needs_every_step_rated_and_no_negative(leased):
    _, assignment, client, _ = leased
    short = solution_body(3)
    assert "every step" in str(submit(client, assignment, short).json()["steps"])
    negative = solution_body(4)
    negative["steps"][3]["rating"] = -1
    assert "cannot contain a -1" in str(submit(client, assignment, negative).json()["steps"])
    assert submit(client, assignment, solution_body(4)).status_code == 201


def test_give_up_needs_a_reason_and_takes_any_prefix(leased):
    _, assignment, client, _ = leased
    body = {"reason": "  ", "total_time_ms": 10, "steps": [{"position": 0, "rating": 1}]}
    response = submit(client, assignment, body, "give-up")
    assert response.status_code == 400
    assert "reason" in response.json()
    body["reason"] = "too hard"
    response = submit(client, assignment, body, "give-up")
    assert response.status_code == 201
    labeling = Labeling.objects.get()
    assert (labeling.finish_reason, labeling.finish_reason_text) == ("give_up", "too hard")
    assert labeling.steps.count() == 1


def test_report_bad_problem_without_steps(leased):
    _, assignment, client, _ = leased
    response = submit(
        client, assignment, {"reason": "ambiguous", "total_time_ms": 5}, "report-bad-problem"
    )
    assert response.status_code == 201
    assert response.json()["finish_reason"] == "bad_problem"
    assert Labeling.objects.get().steps.count() == 0


def test_someone_elses_assignment_is_403_and_unknown_is_404(leased):
    _, assignment, _, _ = leased
    intruder = client_for(make_labeler())
    for method, path, body in [
        ("post", "heartbeat/", None),
        ("put", "draft/", {"state": {}, "active_ms": 1}),
        ("post", "submit/", solution_body(4)),
        ("post", "give-up/", {"reason": "x", "total_time_ms": 1}),
    ]:
        response = getattr(intruder, method)(
            f"/api/labeling/assignments/{assignment.pk}/{path}", body, format="json"
        )
        assert response.status_code == 403, path
        assert "another labeler" in response.json()["detail"]
    missing = intruder.post("/api/labeling/assignments/999999999/heartbeat/")
    assert missing.status_code == 404
    assert Labeling.objects.count() == 0


def test_draft_round_trip_and_size_limit(leased):
    _, assignment, client, _ = leased
    url = f"/api/labeling/assignments/{assignment.pk}/draft/"
    ok = client.put(url, {"state": {"cursor": 2, "r": [1, 0]}, "active_ms": 777}, format="json")
    assert ok.status_code == 200
    assert set(ok.json()) == {"saved_at", "lease_expires_at"}
    too_big = client.put(url, {"state": {"x": "y" * 300_000}, "active_ms": 1}, format="json")
    assert too_big.status_code == 400 and "state" in too_big.json()
    body = client.post("/api/labeling/claim/").json()["assignment"]
    assert body["draft"]["state"] == {"cursor": 2, "r": [1, 0]}
    assert body["draft"]["active_ms"] == 777


def test_me_reports_own_work_only(leased):
    labeler, assignment, client, _ = leased
    submit(client, assignment, solution_body(4))
    other = make_labeler()
    make_task()
    services.assignment_submit(
        assignment_id=services.assignment_claim(labeler=other).pk,
        labeler=other,
        finish_reason="give_up",
        reason="no",
        total_time_ms=50,
        steps=[],
    )
    me = client.get("/api/labeling/me/").json()
    assert me["username"] == labeler.user.username
    assert me["screening_status"] == "passed"
    assert me["tasks_today"] == 1 and me["mean_time_ms_today"] == 1234
    assert me["recent"][0]["finish_reason"] == "solution"
    assert len(me["recent"]) == 1
