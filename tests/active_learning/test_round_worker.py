"""A round end to end on a real Celery worker: launch, score with a tiny PRM, select, labelers
claim and submit through the labeling API, and the next round retrains on their labels."""

from __future__ import annotations

import time

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from labeling.models import Generation, Labeling, Problem
from tests.active_learning import factories as f
from tests.active_learning.conftest import TINY_HYPERPARAMETERS
from training import services as training
from training.models import PRMVersion, SolutionScore

pytestmark = [
    pytest.mark.celery_worker,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


def store_world(world, *, labeled: bool) -> dict[int, list]:
    """Synthetic solutions as graded Solutions; returns solution id -> true step ratings.

    ``labeled`` ones get an imported labeling (training data for the first PRM)."""
    from tests.training.factories import labeling

    truth = {}
    for item in world:
        prob, _ = Problem.objects.get_or_create(
            source_id=item.problem_id, defaults={"text": item.problem, "reference_answer": ""}
        )
        sol = f.solution(prob, grade="correct" if item.is_correct else "wrong", steps=item.steps)
        truth[sol.id] = list(item.ratings)
        if labeled:
            labeling(sol, list(item.ratings))
    return truth


def wait_for(number: int, states: set[str], timeout: float = 300) -> Generation:
    deadline = time.time() + timeout
    seen = []
    while time.time() < deadline:
        generation = Generation.objects.get(number=number)
        if not seen or seen[-1] != generation.progress:
            seen.append(generation.progress)
        if generation.state in states:
            generation.seen_progress = seen  # type: ignore[attr-defined]
            return generation
        time.sleep(0.3)
    raise AssertionError(f"round {number} still {generation.state}: {generation.progress}")


def label_everything(client: APIClient, truth: dict[int, list], limit: int = 50) -> int:
    """Claim and submit until the queue is empty; ratings follow the synthetic truth."""
    from labeling.models import Assignment

    done = 0
    for _ in range(limit):
        response = client.post("/api/labeling/claim/")
        if response.status_code == 204:
            return done
        assert response.status_code == 200, response.content
        a = response.json()["assignment"]
        # The assignment tells the labeler nothing about selection.
        assert "score" not in str(a) and "generation" not in str(a)
        solution_id = Assignment.objects.get(id=a["id"]).task.solution_id
        ratings = truth[solution_id]
        if -1 in ratings:
            k = ratings.index(-1)
            reason, rated = "found_error", ratings[: k + 1]
        else:
            reason, rated = "solution", [1 if r is None else r for r in ratings]
            rated += [1] * (len(a["steps"]) - len(rated))
        steps = [
            {"position": i, "rating": r, "flagged": False, "alternatives": []}
            for i, r in enumerate(rated)
        ]
        body = {"finish_reason": reason, "reason": "", "total_time_ms": 1000, "steps": steps}
        submitted = client.post(f"/api/labeling/assignments/{a['id']}/submit/", body, format="json")
        assert submitted.status_code == 201, submitted.content
        done += 1
    raise AssertionError("the queue never emptied")


def test_round_end_to_end_then_retrain_on_its_labels(celery_worker_process, tiny_backbone):
    from training.prm.synthetic import make_world

    store_world(make_world(6, 3, seed=3), labeled=True)
    truth = store_world(make_world(5, 4, seed=11), labeled=False)
    with transaction.atomic():
        v0 = training.prm_version_create(
            name="v0", base_model=tiny_backbone, hyperparameters=TINY_HYPERPARAMETERS
        )
        run = training.training_run_start(prm_version_id=v0.id, enqueue=False)
    training.training_run_execute(run_id=run.id)
    v0.refresh_from_db()
    assert v0.state == "ready", v0.runs.get().error

    admin = f.person("admin")
    labeler = f.person("labeler")
    admin_api, labeler_api = APIClient(), APIClient()
    admin_api.force_authenticate(admin.user)
    labeler_api.force_authenticate(labeler.user)

    # Round 0: the tiny PRM scores the pool on the worker, then selects 80/20.
    response = admin_api.post(
        "/api/rounds/",
        {"prm_version": v0.id, "strategy": "convincing_wrong_answer", "size": 6},
        format="json",
    )
    assert response.status_code == 201, response.content
    number = response.json()["number"]
    first = wait_for(number, {"active", "failed", "finished"})
    assert first.state == "active", first.progress
    stages = [p.get("stage") for p in first.seen_progress]
    assert "scoring" in stages or first.progress.get("scored")
    assert first.progress["selected"] == 6
    # Every candidate got a score from v0; the selection records v0 and its scores.
    assert SolutionScore.objects.filter(prm_version=v0, solution_id__in=truth).count() == len(truth)
    for sel in first.selections.select_related("solution"):
        assert sel.score == SolutionScore.objects.get(prm_version=v0, solution=sel.solution).score
        assert sel.solution.selection_score == sel.score
    assert first.prm_version_id == v0.id
    assert "active_learning.score_round" in celery_worker_process.log_path.read_text()

    # Labelers get the round's tasks through the labeling API and submit them.
    assert label_everything(labeler_api, truth) == 6
    assert set(first.tasks.values_list("state", flat=True)) == {"done"}
    round_labels = Labeling.objects.filter(generation=first)
    assert round_labels.count() == 6

    # Round 1 retrains on everything labeled so far (round 0's labels included), then selects.
    response = admin_api.post(
        "/api/rounds/",
        {"prm_version": v0.id, "strategy": "uncertainty", "size": 4, "retrain": True},
        format="json",
    )
    assert response.status_code == 201, response.content
    second = wait_for(response.json()["number"], {"active", "failed", "finished"})
    assert second.state == "active", second.progress
    # Polling may miss the short training stage; the trained version and its run are the proof.
    new = second.prm_version
    assert new is not None and new.id != v0.id and new.name == f"round-{second.number}-prm"
    assert new.state in (PRMVersion.State.READY, PRMVersion.State.ACTIVE)
    assert new.runs.filter(kind="train", state="succeeded").exists()
    assert new.data_snapshot["max_labeling_id"] >= max(round_labels.values_list("id", flat=True))
    assert second.progress["selected"] == 4
    picked = set(second.tasks.values_list("solution_id", flat=True))
    assert not picked & set(first.tasks.values_list("solution_id", flat=True))
    assert SolutionScore.objects.filter(prm_version=new, solution_id__in=picked).count() == 4
