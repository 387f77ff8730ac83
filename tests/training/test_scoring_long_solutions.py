"""Scoring on the platform: a solution longer than the model's context is scored as trained (its
leading steps), flagged, and the selection that reads the stored probabilities still runs."""

from __future__ import annotations

import pytest

from active_learning.selection import candidate_pool, select_from_pool
from labeling.models import Solution
from tests.training import factories as f
from training.models import PRMVersion, SolutionScore
from training.services import score_solutions

pytestmark = pytest.mark.django_db


def test_long_solution_is_scored_on_the_steps_that_fit(tiny_backbone, tmp_path):
    from training.prm.model import new_reward_model, save_checkpoint

    model, tokenizer = new_reward_model(tiny_backbone, seed=0)
    checkpoint = save_checkpoint(
        model, tokenizer, str(tmp_path / "prm"), meta={"objective": "prm", "max_length": 48}
    )
    version = PRMVersion.objects.create(
        name="short-context",
        base_model=tiny_backbone,
        state=PRMVersion.State.READY,
        checkpoint_path=checkpoint,
    )
    prob = f.problem()
    long_steps = [f"Step {i}: add {i} and {i} to get {2 * i}." for i in range(30)]
    long = f.solution(prob, long_steps, grade=Solution.Grade.WRONG)
    short = f.solution(prob, ["So the answer is 4."], grade=Solution.Grade.CORRECT)
    messages = []

    scored = score_solutions(
        prm_version_id=version.id, progress=lambda fraction, message="": messages.append(message)
    )

    assert scored == 2
    rows = {s.solution_id: s for s in SolutionScore.objects.all()}
    assert 1 <= len(rows[long.id].step_probabilities) < len(long_steps)
    assert len(rows[short.id].step_probabilities) == 1
    assert any("1 longer than the context" in m for m in messages)
    pool = candidate_pool(prm_version_id=version.id)
    for strategy, params in (("convincing_wrong_answer", {}), ("uncertainty", {})):
        picks = select_from_pool(pool, 2, strategy, params)
        assert {p.solution_id for p in picks} == {long.id, short.id}
