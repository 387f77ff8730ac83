"""The percentile bootstrap over paired seeds (no Django, no training)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from active_learning.simulation import (
    RoundResult,
    SimulationResult,
    SimulationSettings,
    ratio_at_common_best,
    summarize_seeds,
)
from active_learning.stats import geometric_mean, percentile_bootstrap, quantile


def test_geometric_mean():
    assert geometric_mean([2.0, 0.5]) == pytest.approx(1.0)
    assert geometric_mean([1.0, 4.0, 16.0]) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="positive"):
        geometric_mean([1.0, 0.0])


@pytest.mark.parametrize("q", [0.0, 0.025, 0.3, 0.5, 0.975, 1.0])
def test_quantile_matches_numpy(q):
    values = sorted(random.Random(1).uniform(0, 10) for _ in range(37))
    assert quantile(values, q) == pytest.approx(float(np.quantile(values, q)))


def test_two_values_give_the_three_possible_means_as_the_interval():
    # Resamples of [1, 4] are {1,1}, {1,4}, {4,4}: geometric means 1, 2, 4 with chances
    # 1/4, 1/2, 1/4, so the 2.5% and 97.5% quantiles of 2000 draws are 1 and 4.
    interval = percentile_bootstrap([1.0, 4.0], resamples=2000, seed=3)
    assert interval.estimate == pytest.approx(2.0)
    assert (interval.low, interval.high) == (pytest.approx(1.0), pytest.approx(4.0))
    assert interval.excludes(0.9) and not interval.excludes(1.0)


def test_identical_values_collapse_the_interval_and_a_seed_repeats_it():
    interval = percentile_bootstrap([1.7] * 5)
    assert interval.low == pytest.approx(1.7) and interval.high == pytest.approx(1.7)
    values = [1.2, 0.9, 2.5, 1.6, 1.1]
    assert percentile_bootstrap(values, seed=7) == percentile_bootstrap(values, seed=7)
    assert "95% CI" in percentile_bootstrap(values).describe()


def test_the_interval_covers_the_true_value_about_as_often_as_it_says():
    # Log-normal ratios with median 1.5: the geometric mean's 90% interval from samples of 30
    # should cover 1.5 in roughly 90% of repetitions (the percentile bootstrap runs a little
    # narrow at small n). A wrong tail (e.g. 0.05/0.95 swapped for 0.25/0.75) fails this.
    rng = random.Random(11)
    covered = 0
    repetitions = 120
    for rep in range(repetitions):
        values = [math.exp(rng.gauss(math.log(1.5), 0.4)) for _ in range(30)]
        interval = percentile_bootstrap(values, resamples=500, confidence=0.9, seed=rep)
        covered += interval.low <= 1.5 <= interval.high
    assert 0.8 <= covered / repetitions <= 0.97


def test_bad_arguments():
    with pytest.raises(ValueError, match="at least two"):
        percentile_bootstrap([1.0])
    with pytest.raises(ValueError, match="confidence"):
        percentile_bootstrap([1.0, 2.0], confidence=1.0)


def _result(seed, active, uniform):
    rows = []
    for arm, curve in (("active", active), ("uniform", uniform)):
        for n, (labels, quality) in enumerate(curve, start=1):
            rows.append(RoundResult(arm, n, "x", labels, labels, 0.5, 0.5, quality, quality, 0.0))
    return SimulationResult(settings=SimulationSettings(seed=seed), rows=rows)


def test_summary_over_seeds():
    results = [
        # active's best 0.70 at 60; uniform gets there at 60 + 30 * 0.05 / 0.1 = 75: 1.25.
        # Common best = min(0.70, 0.75) = 0.70: the same 75 / 60.
        _result(0, [(30, 0.6), (60, 0.7)], [(30, 0.6), (60, 0.65), (90, 0.75)]),
        # uniform never reaches 0.8: at active's best only >= 90 / 60 = 1.5.
        # Common best = uniform's 0.70: uniform needs 90, active 30 + 30 * 0.1 / 0.2 = 45: 2.0
        _result(1, [(30, 0.6), (60, 0.8)], [(30, 0.6), (60, 0.65), (90, 0.7)]),
        # active's best 0.62 at 60; uniform at 30 + 30 * 0.02 / 0.1 = 36: 0.6 (both readings)
        _result(2, [(30, 0.6), (60, 0.62)], [(30, 0.6), (60, 0.7), (90, 0.7)]),
    ]
    summary = summarize_seeds(results, "step_auroc")
    assert summary.seeds == [0, 1, 2]
    common, at_active = summary.comparisons
    assert (common.reading, at_active.reading) == ("common best", "active's best")
    assert common.values == pytest.approx([1.25, 2.0, 0.6])
    assert common.censored == 0
    assert at_active.values == pytest.approx([1.25, 1.5, 0.6])
    assert at_active.censored == 1 and at_active.ratios[1].ratio is None
    assert summary.headline is common
    assert common.interval.estimate == pytest.approx(geometric_mean([1.25, 2.0, 0.6]))
    assert "includes 1.0" in common.describe()


def test_common_best_ratio_is_symmetric():
    a = [(30, 0.6), (60, 0.66), (90, 0.64), (120, 0.71)]
    b = [(30, 0.6), (60, 0.62), (90, 0.69), (120, 0.68)]
    forward, backward = ratio_at_common_best(a, b), ratio_at_common_best(b, a)
    assert forward.target_quality == pytest.approx(0.69)
    assert forward.ratio * backward.ratio == pytest.approx(1.0)
    assert forward.ratio_lower_bound is None


def test_the_control_arm_enters_the_summary():
    def with_control(seed):
        result = _result(seed, [(30, 0.6), (60, 0.7)], [(30, 0.6), (60, 0.65)])
        result.settings.control = True
        result.rows += [
            RoundResult("wrong_random", 1, "x", 30, 30, 0.5, 0.5, 0.6, 0.6, 0.0),
            RoundResult("wrong_random", 2, "x", 60, 60, 0.5, 0.5, 0.68, 0.68, 0.0),
        ]
        return result

    summary = summarize_seeds([with_control(0), with_control(1)], "step_auroc")
    pairs = [(c.arm, c.baseline, c.reading) for c in summary.comparisons]
    assert pairs[2:] == [
        ("active", "wrong_random", "common best"),
        ("wrong_random", "uniform", "common best"),
    ]
