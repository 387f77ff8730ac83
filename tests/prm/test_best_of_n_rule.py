"""One best-of-N tie rule: the simulation's held-out metric and best_of_n agree, ties included."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from active_learning.simulation import best_of_n_accuracy
from training.prm.evaluate import Candidate, best_of_n, top_pick_credit


@dataclass
class _Sample:
    problem: str
    problem_id: str
    is_correct: bool


@dataclass
class _Score:
    score: float


def test_a_tie_is_a_coin_flip_in_both():
    heldout = [_Sample("p", "p1", False), _Sample("p", "p1", True)]  # the wrong one comes first
    scores = [_Score(0.7), _Score(0.7)]
    assert best_of_n_accuracy(heldout, scores) == 0.5
    assert top_pick_credit([0.7, 0.7], [False, True]) == 0.5
    assert top_pick_credit([0.2, 0.9, 0.9, 0.9], [True, True, False, False]) == pytest.approx(1 / 3)


@pytest.mark.parametrize("seed", range(10))
def test_simulation_metric_equals_best_of_n_at_full_n(seed):
    rng = random.Random(seed)
    heldout, scores, problems = [], [], []
    for p in range(rng.randint(1, 12)):
        candidates = []
        for _ in range(6):
            correct, value = rng.random() < 0.4, rng.randint(0, 3) / 3  # coarse: many ties
            heldout.append(_Sample(f"problem {p}", f"p{p}", correct))
            scores.append(_Score(value))
            candidates.append(Candidate(None, correct, {"prm": value}))
        problems.append(candidates)
    table = best_of_n(problems, ns=(6,), trials=1, methods=["prm"])
    assert best_of_n_accuracy(heldout, scores) == pytest.approx(table["prm"][6])
