"""The oracles and the data-efficiency ratio against hand-made cases (no training involved)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest

from active_learning.simulation import (
    KnownCorrectnessOracle,
    PRMOracle,
    best_of_n_accuracy,
    efficiency_ratio,
    labels_to_reach,
    phase2_ratings,
    rating_from_prm,
    ratio_at_uniform_best,
)


@dataclass
class Sol:
    problem: str
    steps: list[str]
    ratings: list[int | None]
    problem_id: str = ""
    is_correct: bool | None = None


@dataclass
class Scores:
    step_probs: list[tuple[float, float, float]]
    score: float = 0.0


@dataclass
class FixedScorer:
    """Answers each solution's step probabilities from a table keyed by its first step."""

    table: dict[str, list[tuple[float, float, float]]]
    calls: list[list[tuple[str, list[str]]]] = field(default_factory=list)

    def score(self, items):
        self.calls.append(list(items))
        return [Scores(self.table[steps[0]]) for _, steps in items]


# ------------------------------------------------------------------ synthetic / known oracle


@pytest.mark.parametrize(
    ("truth", "labeled"),
    [
        ([1, 1, 1], [1, 1, 1]),
        ([1, -1, 1, -1], [1, -1]),
        ([-1, 1], [-1]),
        ([1, 0, 0, -1, 1], [1, 0, 0, -1]),
        ([1, None, -1], [1]),
        ([], []),
    ],
)
def test_phase2_labels_stop_after_the_first_negative_step(truth, labeled):
    assert phase2_ratings(truth) == labeled


def test_known_oracle_labels_each_solution_like_phase_2():
    solutions = [
        Sol("p", ["a", "b", "c"], [1, -1, -1]),
        Sol("p", ["a", "b"], [0, 1]),
    ]
    assert KnownCorrectnessOracle().label(solutions) == [[1, -1], [0, 1]]


# ----------------------------------------------------------------------------- PRM 20% rule


@pytest.mark.parametrize(
    ("probs", "rating"),
    [
        ((0.21, 0.0, 0.79), -1),  # just above 20%: negative although positive is most likely
        ((0.20, 0.0, 0.80), 1),  # exactly 20% is not "more than 20%"
        ((0.19, 0.5, 0.31), 0),  # not negative: neutral is more likely than positive
        ((0.10, 0.45, 0.45), 1),  # a neutral/positive tie counts as positive
        ((0.90, 0.05, 0.05), -1),
    ],
)
def test_prm_rating_rule(probs, rating):
    assert rating_from_prm(probs) == rating


def test_prm_oracle_applies_the_rule_per_step_and_stops_at_the_first_negative():
    scorer = FixedScorer(
        {
            "s1": [(0.05, 0.05, 0.9), (0.25, 0.05, 0.7), (0.01, 0.01, 0.98)],
            "t1": [(0.1, 0.6, 0.3), (0.15, 0.05, 0.8)],
        }
    )
    oracle = PRMOracle(scorer)
    got = oracle.label([Sol("p", ["s1", "s2", "s3"], []), Sol("q", ["t1", "t2"], [])])
    assert got == [[1, -1], [0, 1]]
    assert scorer.calls == [[("p", ["s1", "s2", "s3"]), ("q", ["t1", "t2"])]]


def test_prm_oracle_threshold_is_configurable():
    scorer = FixedScorer({"s": [(0.3, 0.0, 0.7)]})
    assert PRMOracle(scorer).label([Sol("p", ["s"], [])]) == [[-1]]
    assert PRMOracle(scorer, threshold=0.5).label([Sol("p", ["s"], [])]) == [[1]]


# -------------------------------------------------------------------------- efficiency ratio


def test_labels_to_reach_interpolates_linearly_between_rounds():
    labels = [10, 20, 30, 40]
    quality = [0.60, 0.70, 0.74, 0.80]
    assert labels_to_reach(labels, quality, 0.60) == 10
    assert labels_to_reach(labels, quality, 0.65) == pytest.approx(15.0)
    # between 30 (0.74) and 40 (0.80): 30 + 10 * 0.03 / 0.06
    assert labels_to_reach(labels, quality, 0.77) == pytest.approx(35.0)
    assert labels_to_reach(labels, quality, 0.81) is None


def test_labels_to_reach_uses_the_running_maximum():
    # A dip after round 2 does not count: the best model so far stays active.
    labels = [10, 20, 30, 40]
    quality = [0.60, 0.72, 0.65, 0.78]
    # the envelope is 0.60, 0.72, 0.72, 0.78; 0.75 is reached halfway from 30 to 40
    assert labels_to_reach(labels, quality, 0.75) == pytest.approx(35.0)
    # 0.70 is reached between 10 and 20 on the envelope
    assert labels_to_reach(labels, quality, 0.70) == pytest.approx(10 + 10 * 0.10 / 0.12)


def test_efficiency_ratio_against_a_hand_computed_curve_pair():
    active = [(40, 0.60), (80, 0.70), (120, 0.76), (160, 0.80)]
    uniform = [(40, 0.60), (80, 0.64), (120, 0.68), (160, 0.72), (200, 0.76), (240, 0.82)]
    ratio = efficiency_ratio(active, uniform)
    # active peaks at 0.80 with 160 labels; uniform gets there between 200 (0.76) and 240 (0.82):
    # 200 + 40 * 0.04 / 0.06 = 226.67 labels -> 226.67 / 160 = 1.4167
    assert ratio.target_quality == pytest.approx(0.80)
    assert ratio.active_labels == 160
    assert ratio.uniform_labels == pytest.approx(200 + 40 * 0.04 / 0.06)
    assert ratio.ratio == pytest.approx((200 + 40 * 0.04 / 0.06) / 160)
    assert ratio.ratio_lower_bound is None
    assert "1.42x" in ratio.describe()


def test_ratio_read_at_uniform_best():
    active = [(40, 0.60), (80, 0.70), (120, 0.76), (160, 0.80)]
    uniform = [(40, 0.60), (80, 0.64), (120, 0.68), (160, 0.72)]
    # uniform's best 0.72 at 160; active gets there at 80 + 40 * 0.02 / 0.06 = 93.33
    assert ratio_at_uniform_best(active, uniform).startswith(f"{160 / (80 + 40 / 3):.2f}x")
    assert ratio_at_uniform_best(uniform[:2], active).startswith("active never reaches")


def test_efficiency_ratio_when_uniform_never_gets_there():
    active = [(40, 0.60), (80, 0.75)]
    uniform = [(40, 0.60), (80, 0.65), (120, 0.70)]
    ratio = efficiency_ratio(active, uniform)
    assert ratio.uniform_labels is None and ratio.ratio is None
    assert ratio.ratio_lower_bound == pytest.approx(120 / 80)
    assert ratio.describe().startswith("> 1.50x")


def test_efficiency_ratio_below_one_when_active_learning_is_worse():
    active = [(40, 0.60), (80, 0.62)]
    uniform = [(40, 0.60), (80, 0.70)]
    ratio = efficiency_ratio(active, uniform)
    # active's best (0.62 at 80) is reached by uniform at 40 + 40 * 0.02 / 0.10 = 48
    assert ratio.ratio == pytest.approx(48 / 80)


def test_efficiency_ratio_target_is_active_peak_even_if_it_comes_early():
    active = [(40, 0.60), (80, 0.78), (120, 0.70)]
    uniform = [(40, 0.60), (80, 0.70), (120, 0.78)]
    ratio = efficiency_ratio(active, uniform)
    assert ratio.active_labels == 80
    assert ratio.ratio == pytest.approx(120 / 80)


def test_efficiency_ratio_skips_undefined_rounds():
    nan = float("nan")
    ratio = efficiency_ratio([(40, nan), (80, 0.7)], [(40, nan), (80, 0.6), (120, 0.7)])
    assert ratio.active_labels == 80 and ratio.ratio == pytest.approx(120 / 80)
    undefined = efficiency_ratio([(40, nan)], [(40, 0.5)])
    assert undefined.ratio is None and undefined.ratio_lower_bound is None
    assert undefined.describe().startswith("undefined")


def test_efficiency_ratio_rejects_empty_curves():
    with pytest.raises(ValueError, match="at least one point"):
        efficiency_ratio([], [(1, 0.5)])


# ------------------------------------------------------------------------------- best-of-N


def test_best_of_n_picks_the_top_scored_sample_per_problem():
    heldout = [
        Sol("p", ["a"], [1], "p1", True),
        Sol("p", ["b"], [1], "p1", False),
        Sol("q", ["c"], [1], "p2", False),
        Sol("q", ["d"], [1], "p2", True),
        Sol("r", ["e"], [1], "p3", True),
    ]
    scores = [Scores([], 0.2), Scores([], 0.9), Scores([], 0.1), Scores([], 0.3), Scores([], 0.5)]
    # p1 picks the wrong sample, p2 and p3 the right one
    assert best_of_n_accuracy(heldout, scores) == pytest.approx(2 / 3)
    assert math.isnan(best_of_n_accuracy([], []))
