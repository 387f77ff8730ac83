"""Rounds through the services and the API (the pipeline steps are called in-process here;
tests/active_learning/test_round_worker.py runs them on a real Celery worker)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from active_learning import services, strategies
from active_learning.models import Selection
from active_learning.strategies import Candidate
from labeling.models import Generation, LabelingTask, Solution
from labeling.services import assignment_claim
from tests.active_learning import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin():
    return f.person("admin")


@pytest.fixture
def labeler():
    return f.person("labeler")


def client_for(who) -> APIClient:
    client = APIClient()
    client.force_authenticate(who.user)
    return client


@pytest.fixture
def world(tmp_path):
    """Three problems with scored solutions, plus solutions that are not candidates."""
    version = f.ready_version(tmp_path)
    problems = [f.problem() for _ in range(3)]
    candidates = []
    for p_index, prob in enumerate(problems):
        for s_index in range(4):
            grade = "wrong" if s_index % 2 == 0 else "correct"
            sol = f.solution(prob, grade=grade)
            f.score(version, sol, round(0.1 + 0.2 * s_index + 0.05 * p_index, 4))
            candidates.append(sol)
    ungraded = f.solution(problems[0], grade="ungraded")
    f.score(version, ungraded, 0.99)
    # Already queued in an older round, and queued then cancelled (which frees it).
    old = Generation.objects.create(number=0, state="finished")
    queued = f.solution(problems[1], grade="wrong")
    f.score(version, queued, 0.98)
    LabelingTask.objects.create(solution=queued, generation=old)
    freed = f.solution(problems[2], grade="wrong")
    f.score(version, freed, 0.97)
    LabelingTask.objects.create(solution=freed, generation=old, state="cancelled")
    candidates.append(freed)
    return {"version": version, "candidates": candidates, "ungraded": ungraded, "queued": queued}


def launch(admin, **kwargs) -> Generation:
    kwargs.setdefault("strategy", "convincing_wrong_answer")
    kwargs.setdefault("size", 5)
    return services.round_launch(launched_by=admin.user, **kwargs)


def run_pipeline(generation: Generation) -> Generation:
    if generation.prm_version_id or generation.retrain:
        services.round_prepare_scores(generation_id=generation.id)
    services.round_select(generation_id=generation.id)
    generation.refresh_from_db()
    return generation


def test_convincing_round_selects_like_the_pure_strategy_and_records_scores(admin, world):
    version = world["version"]
    generation = launch(
        admin, prm_version_id=version.id, size=5, strategy_params={"per_problem_cap": 2}
    )
    assert generation.number == 1 and generation.state == "launching"
    generation = run_pipeline(generation)
    assert generation.state == "active"
    assert generation.prm_version_id == version.id
    assert generation.progress["selected"] == 5

    pool = [
        Candidate(s.id, s.problem_id, s.scores.get().score, s.grade == "wrong")
        for s in world["candidates"]
    ]
    expected = strategies.convincing_wrong_answer(pool, 5, per_problem_cap=2)
    chosen = list(Selection.objects.filter(generation=generation).order_by("rank"))
    assert [s.solution_id for s in chosen] == [p.solution_id for p in expected]
    assert [s.reason for s in chosen] == [p.reason for p in expected]
    # The score that chose each one is recorded on the solution (exported as
    # pre_generated_verifier_score) and each selection has its task.
    for sel in chosen:
        assert Solution.objects.get(id=sel.solution_id).selection_score == sel.score
        assert sel.task.generation_id == generation.id
        assert sel.task.labelings_required == 1
    assert world["ungraded"].id not in {s.solution_id for s in chosen}
    assert world["queued"].id not in {s.solution_id for s in chosen}
    # Running the step again changes nothing.
    assert services.round_select(generation_id=generation.id) == 0
    assert LabelingTask.objects.filter(generation=generation).count() == 5


def test_next_round_skips_what_earlier_rounds_queued(admin, world):
    first = run_pipeline(launch(admin, prm_version_id=world["version"].id, size=6))
    second = run_pipeline(launch(admin, prm_version_id=world["version"].id, size=100))
    first_ids = set(first.tasks.values_list("solution_id", flat=True))
    second_ids = set(second.tasks.values_list("solution_id", flat=True))
    assert not first_ids & second_ids
    assert first_ids | second_ids == {s.id for s in world["candidates"]}
    assert second.number == first.number + 1
    # Nothing left: the next round ends at once, empty.
    third = run_pipeline(launch(admin, prm_version_id=world["version"].id, size=3))
    assert third.state == "finished" and third.progress["stage"] == "empty"


def test_uniform_round_without_a_prm_is_seeded(admin, world):
    generation = run_pipeline(launch(admin, strategy="uniform", size=4, labelings_per_task=2))
    assert generation.prm_version is None
    assert generation.strategy_params == {"seed": generation.number}
    tasks = list(generation.tasks.all())
    assert len(tasks) == 4 and {t.labelings_required for t in tasks} == {2}
    assert all(s.score is None for s in generation.selections.all())


def test_launch_rejects_bad_input_with_field_messages(admin, world):
    client = client_for(admin)
    cases = [
        ({"strategy": "greedy", "size": 5}, "strategy"),
        ({"strategy": "convincing_wrong_answer", "size": 5}, "prm_version"),
        ({"strategy": "uniform", "size": 0}, "size"),
        ({"strategy": "uniform", "size": 5, "qc_rate": 2}, "qc_rate"),
        (
            {"strategy": "uniform", "size": 5, "strategy_params": {"wrong_share": 0.5}},
            "strategy_params",
        ),
        ({"strategy": "uncertainty", "size": 5, "prm_version": 999999}, "prm_version"),
    ]
    for body, field in cases:
        response = client.post("/api/rounds/", body, format="json")
        assert response.status_code == 400, body
        assert field in response.json(), response.json()
    assert not Generation.objects.filter(number__gte=1).exists()


def test_launch_through_the_api(admin, world):
    client = client_for(admin)
    response = client.post(
        "/api/rounds/",
        {
            "prm_version": world["version"].id,
            "strategy": "convincing_wrong_answer",
            "strategy_params": {"wrong_share": 0.5},
            "size": 4,
            "labelings_per_task": 2,
            "qc_rate": 0.1,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["number"] == 1 and body["state"] == "launching"
    assert body["prm_version"]["name"] == "prm-a"
    assert body["exports"]["prm800k"] == "/api/admin/exports/prm800k/?generation=1"
    # One launching round at a time.
    again = client.post("/api/rounds/", {"strategy": "uniform", "size": 2}, format="json")
    assert again.status_code == 409
    generation = run_pipeline(Generation.objects.get(number=1))
    detail = client.get("/api/rounds/1/").json()
    assert detail["state"] == "active"
    assert detail["counts"]["queued"] == 4 and detail["counts"]["selected"] == 4
    assert detail["qc_rate"] == 0.1 and generation.labelings_per_task == 2


def test_pause_resume_cancel_move_only_unclaimed_tasks(admin, labeler, world):
    generation = run_pipeline(launch(admin, prm_version_id=world["version"].id, size=4))
    assignment = assignment_claim(labeler=labeler)
    assert assignment is not None and assignment.task.generation_id == generation.id
    client = client_for(admin)

    paused = client.post(f"/api/rounds/{generation.number}/pause/").json()
    assert paused["state"] == "paused"
    states = dict(generation.tasks.values_list("id", "state"))
    assert states.pop(assignment.task_id) == "open"  # the leased one stays with its labeler
    assert set(states.values()) == {"paused"}
    # Nobody else gets work from a paused round.
    assert assignment_claim(labeler=f.person("labeler")) is None
    assert client.post(f"/api/rounds/{generation.number}/pause/").status_code == 409

    assert client.post(f"/api/rounds/{generation.number}/resume/").json()["state"] == "active"
    assert set(generation.tasks.values_list("state", flat=True)) == {"open"}
    assert client.post(f"/api/rounds/{generation.number}/pause/").status_code == 200

    cancelled = client.post(f"/api/rounds/{generation.number}/cancel/").json()
    assert cancelled["state"] == "cancelled"
    states = dict(generation.tasks.values_list("id", "state"))
    assert states.pop(assignment.task_id) == "open"
    assert set(states.values()) == {"cancelled"}
    assert client.post(f"/api/rounds/{generation.number}/cancel/").status_code == 409
    assert client.post("/api/rounds/99/cancel/").status_code == 404
    # Cancelled tasks free their solutions for later rounds.
    nxt = run_pipeline(launch(admin, prm_version_id=world["version"].id, size=100))
    assert set(nxt.tasks.values_list("solution_id", flat=True)) >= set(
        generation.tasks.filter(state="cancelled").values_list("solution_id", flat=True)
    )


def test_cancel_while_launching_stops_the_pipeline(admin, world):
    generation = launch(admin, prm_version_id=world["version"].id)
    services.round_cancel(generation_id=generation.id)
    assert services.round_prepare_scores(generation_id=generation.id) is False
    assert services.round_select(generation_id=generation.id) == 0
    assert not generation.tasks.exists()


def test_a_failed_launch_is_recorded_and_frees_the_launch_slot(admin, world):
    generation = launch(admin, prm_version_id=world["version"].id)
    services.round_fail(generation_id=generation.id, error="scorer exploded")
    generation.refresh_from_db()
    assert generation.state == "failed" and generation.progress["error"] == "scorer exploded"
    assert launch(admin, strategy="uniform").state == "launching"


@pytest.mark.parametrize(
    "method,url",
    [
        ("get", "/api/rounds/"),
        ("post", "/api/rounds/"),
        ("get", "/api/rounds/dashboard/"),
        ("get", "/api/rounds/0/"),
        ("post", "/api/rounds/0/pause/"),
        ("post", "/api/rounds/0/resume/"),
        ("post", "/api/rounds/0/cancel/"),
    ],
)
def test_labelers_and_strangers_see_no_round_data(labeler, method, url):
    Generation.objects.create(number=0, state="active")
    response = getattr(client_for(labeler), method)(url, {}, format="json")
    assert response.status_code == 403
    assert "strategy" not in response.content.decode()
    anonymous = getattr(APIClient(), method)(url, {}, format="json")
    assert anonymous.status_code in (401, 403)
    assert not Generation.objects.filter(number__gte=1).exists()
    assert Generation.objects.get(number=0).state == "active"


def test_dashboard_figures(admin, labeler, world):
    generation = run_pipeline(launch(admin, prm_version_id=world["version"].id, size=4))
    body = client_for(admin).get("/api/rounds/dashboard/").json()
    row = next(r for r in body["rounds"] if r["number"] == generation.number)
    assert row["counts"]["selected"] == 4
    wrong = generation.selections.filter(solution__grade="wrong").count()
    assert row["counts"]["wrong_answer_share"] == pytest.approx(wrong / 4)
    assert body["labels_per_day"] == [] and body["labelers"] == []


def test_exports_carry_the_selecting_score_and_generation_and_are_admin_only(admin, labeler, world):
    import json

    from labeling.services import assignment_submit

    generation = run_pipeline(launch(admin, prm_version_id=world["version"].id, size=2))
    assignment = assignment_claim(labeler=labeler)
    steps = [{"position": i, "rating": 1, "flagged": False, "alternatives": []} for i in range(2)]
    assignment_submit(
        assignment_id=assignment.id,
        labeler=labeler,
        finish_reason="solution",
        reason="",
        total_time_ms=500,
        steps=steps,
    )
    url = f"/api/admin/exports/prm800k/?generation={generation.number}"
    assert client_for(labeler).get(url).status_code == 403
    assert client_for(labeler).get(url.replace("prm800k", "stepwise")).status_code == 403
    response = client_for(admin).get(url)
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    lines = [json.loads(line) for line in body.splitlines() if line.strip()]
    assert len(lines) == 1
    chosen = Selection.objects.get(generation=generation, solution_id=assignment.task.solution_id)
    assert lines[0]["generation"] == generation.number
    assert lines[0]["question"]["pre_generated_verifier_score"] == pytest.approx(chosen.score)


def test_a_round_finishes_when_every_task_is_labeled(admin, world):
    from labeling.services import assignment_submit

    generation = run_pipeline(launch(admin, prm_version_id=world["version"].id, size=2))
    steps = [{"position": i, "rating": 1, "flagged": False, "alternatives": []} for i in range(2)]
    for n in range(2):
        who = f.person("labeler")
        assignment = assignment_claim(labeler=who)
        assert services.rounds_finish_complete() == 0  # one queued or leased task remains
        assignment_submit(
            assignment_id=assignment.id,
            labeler=who,
            finish_reason="solution",
            reason="",
            total_time_ms=100 + n,
            steps=steps,
        )
    assert services.rounds_finish_complete() == 1
    generation.refresh_from_db()
    assert generation.state == "finished"
    assert services.rounds_finish_complete() == 0


def test_round_list_costs_the_same_queries_for_one_round_or_many(admin, world):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_for(admin)
    run_pipeline(launch(admin, prm_version_id=world["version"].id, size=2))

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/api/rounds/").status_code == 200
        return len(captured)

    one = queries()
    for _ in range(3):
        run_pipeline(launch(admin, prm_version_id=world["version"].id, size=2))
    assert queries() == one
