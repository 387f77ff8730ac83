"""choose_threshold (sort and sweep) picks what trying every candidate threshold picks."""

from __future__ import annotations

import math
import random

import pytest

from training.prm.evaluate import choose_threshold, first_error_metrics, predict_first_error
from training.prm.score import SolutionScores


def _brute_force(scores: list[SolutionScores], truth: list[int]) -> float:
    """Every candidate threshold through predict_first_error and first_error_metrics."""
    values = sorted({p[1] + p[2] for s in scores for p in s.step_probs})
    candidates = {0.0, 0.5, 1.0 + 1e-9}
    candidates.update((a + b) / 2 for a, b in zip(values, values[1:], strict=False))
    if values:
        candidates.update({values[0], values[-1] + 1e-9})
    best, best_key = 0.5, (-1.0, 0.0)
    for threshold in sorted(candidates):
        f1 = first_error_metrics(predict_first_error(scores, threshold), truth)["f1"]
        key = (-1.0 if math.isnan(f1) else f1, -abs(threshold - 0.5))
        if key > best_key:
            best, best_key = threshold, key
    return best


def _random_case(rng: random.Random, n: int, grid: int | None):
    scores, truth = [], []
    for _ in range(n):
        steps = []
        for _ in range(rng.randint(0 if rng.random() < 0.05 else 1, 7)):
            good = rng.random() if grid is None else rng.randint(0, grid) / grid  # ties when coarse
            neutral = good * rng.random()
            steps.append((1.0 - good, neutral, good - neutral))
        scores.append(SolutionScores(step_probs=steps, score=0.0))
        # -1, a step index, or (truncated scoring) an index past the scored steps
        truth.append(rng.choice([-1, -1, rng.randint(0, len(steps) + 1)]))
    return scores, truth


@pytest.mark.parametrize("seed", range(40))
def test_same_threshold_as_trying_every_candidate(seed):
    rng = random.Random(seed)
    n = rng.choice([1, 2, 5, 30, 120])
    scores, truth = _random_case(rng, n, rng.choice([None, 3, 10, 50]))
    assert choose_threshold(scores, truth) == _brute_force(scores, truth)


def test_degenerate_cases():
    one = [SolutionScores([(0.2, 0.1, 0.7)], 0.0)]
    assert choose_threshold(one, [-1]) == 0.5  # F1 undefined without erroneous solutions
    assert choose_threshold([], []) == 0.5
    with pytest.raises(ValueError):
        choose_threshold(one, [-1, 0])


class _CountingSteps(list):
    """A step list that counts how often it is walked."""

    walks = 0

    def __iter__(self):
        _CountingSteps.walks += 1
        return super().__iter__()


def test_each_solution_is_read_once_not_once_per_candidate():
    # Trying every candidate walks every solution once per candidate: quadratic. The sweep reads
    # each solution once, whatever the number of candidate thresholds.
    rng = random.Random(0)
    scores, truth = _random_case(rng, 300, None)
    counted = [SolutionScores(_CountingSteps(s.step_probs), s.score) for s in scores]
    _CountingSteps.walks = 0
    threshold = choose_threshold(counted, truth)
    assert _CountingSteps.walks <= len(counted)
    assert threshold == _brute_force(scores, truth)
