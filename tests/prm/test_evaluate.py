"""Metrics against values computed by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import pytest

from training.prm.data import LabeledSolution
from training.prm.evaluate import (
    Candidate,
    best_of_n,
    choose_threshold,
    first_error_metrics,
    outcome_metrics,
    predict_first_error,
    step_metrics,
)
from training.prm.score import SolutionScores, aggregate_score


def _s(*probs, score=0.0):
    return SolutionScores(step_probs=list(probs), score=score)


def test_step_metrics_by_hand():
    scores = [
        _s((0.1, 0.1, 0.8), (0.2, 0.5, 0.3), (0.7, 0.1, 0.2)),  # goodness .9 .8 .3
        _s((0.6, 0.1, 0.3), (0.3, 0.2, 0.5), (0.9, 0.0, 0.1)),  # goodness .4 .7 (third ignored)
    ]
    labeled = [
        LabeledSolution("p", ["a", "b", "c"], [1, 0, -1]),
        LabeledSolution("q", ["a", "b", "c"], [1, -1, 1]),
    ]
    m = step_metrics(scores, labeled)
    # good steps .9 .8 .4 vs bad .3 .7: 5 of 6 pairs ordered right.
    assert m["step_auroc"] == pytest.approx(5 / 6)
    # argmax classes: pos, neu, neg | neg, pos  vs  pos, neu, neg | pos, neg -> 3 of 5.
    assert m["step_accuracy"] == pytest.approx(0.6)
    assert m["step_binary_accuracy"] == pytest.approx(0.6)
    assert m["n_steps"] == 5 and m["n_negative"] == 2


def test_outcome_metrics_by_hand():
    scores = [_s(score=0.9), _s(score=0.2), _s(score=0.5), _s(score=0.1)]
    labeled = [LabeledSolution("p", ["a"], [1], is_correct=c) for c in (True, False, False, True)]
    # positives .9 .1 vs negatives .2 .5: .9 wins twice, .1 loses twice -> 2/4.
    assert outcome_metrics(scores, labeled)["solution_auroc"] == pytest.approx(0.5)


def test_first_error_metrics_by_hand():
    m = first_error_metrics([2, -1, 1, -1, 0], [2, 1, -1, -1, -1])
    assert m["acc_erroneous"] == pytest.approx(1 / 2)
    assert m["acc_correct"] == pytest.approx(1 / 3)
    assert m["f1"] == pytest.approx(2 * 0.5 * (1 / 3) / (0.5 + 1 / 3))  # = 0.4
    assert m["f1"] == pytest.approx(0.4)
    assert first_error_metrics([0], [1])["f1"] != first_error_metrics([0], [1])["f1"]  # nan
    assert first_error_metrics([0, 0], [1, -1])["f1"] == 0.0


def test_predict_first_error_and_choose_threshold():
    scores = [
        _s((0.1, 0.0, 0.9), (0.8, 0.0, 0.2)),  # goodness .9 .2, truth 1
        _s((0.2, 0.0, 0.8), (0.4, 0.0, 0.6)),  # goodness .8 .6, truth -1
        _s((0.6, 0.0, 0.4), (0.1, 0.0, 0.9)),  # goodness .4 .9, truth 0
    ]
    assert predict_first_error(scores, 0.5) == [1, -1, 0]
    assert predict_first_error(scores, 0.7) == [1, 1, 0]
    assert predict_first_error(scores, 0.1) == [-1, -1, -1]
    truth = [1, -1, 0]
    threshold = choose_threshold(scores, truth)
    # Any threshold in (0.4, 0.6] is perfect; ties go to the one nearest 0.5.
    assert threshold == pytest.approx(0.5)
    assert first_error_metrics(predict_first_error(scores, threshold), truth)["f1"] == 1.0


def test_aggregates():
    assert aggregate_score([0.5, 0.8, 0.9], "product") == pytest.approx(0.36)
    assert aggregate_score([0.5, 0.8, 0.9], "min") == 0.5
    assert aggregate_score([0.5, 0.8, 0.9], "last") == 0.9
    with pytest.raises(ValueError):
        aggregate_score([0.5], "mean")


def test_best_of_n_by_hand():
    hard = [
        Candidate("1", True, {"prm": 0.9, "orm": 0.2}),
        Candidate("2", False, {"prm": 0.1, "orm": 0.8}),
        Candidate("2", False, {"prm": 0.5, "orm": 0.1}),
    ]
    easy = [Candidate("7", True, {"prm": 0.3, "orm": 0.3})]
    table = best_of_n([hard, easy], ns=(1, 2, 3), trials=4000, seed=0)
    # N=3 sees everything: prm picks the right one, orm and the vote ("2" twice) do not.
    assert table["prm"][3] == 1.0
    assert table["orm"][3] == 0.5
    assert table["majority"][3] == 0.5
    # N=2 over the 3 pairs: prm right in 2, orm in 1; vote: two ties (1/2 each) and one "2".
    assert table["prm"][2] == pytest.approx((2 / 3 + 1) / 2, abs=0.02)
    assert table["orm"][2] == pytest.approx((1 / 3 + 1) / 2, abs=0.02)
    assert table["majority"][2] == pytest.approx((1 / 3 + 1) / 2, abs=0.02)
    # N=1 is a random pick for every method.
    for method in ("prm", "orm", "majority"):
        assert table[method][1] == pytest.approx((1 / 3 + 1) / 2, abs=0.02)


def test_best_of_n_counts_score_ties_as_a_coin_flip():
    tied = [Candidate("1", True, {"prm": 0.5}), Candidate("2", False, {"prm": 0.5})]
    assert best_of_n([tied], ns=(2,), trials=10)["prm"][2] == 0.5
    with pytest.raises(ValueError):
        best_of_n([], ns=(1,))
