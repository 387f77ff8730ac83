"""The pure selection strategies against small hand-made pools."""

from __future__ import annotations

import pytest

from active_learning import strategies as s
from active_learning.strategies import Candidate, StrategyError


def c(sid: int, problem: int, score: float | None, wrong: bool, probs=None) -> Candidate:
    return Candidate(sid, problem, score, wrong, probs)


def ids(picks) -> list[int]:
    return [p.solution_id for p in picks]


# A pool of 3 problems: wrong answers at ids 1-5, right answers at 11-15.
POOL = [
    c(1, 1, 0.95, True),
    c(2, 1, 0.90, True),
    c(3, 1, 0.40, True),
    c(4, 2, 0.85, True),
    c(5, 3, 0.10, True),
    c(11, 1, 0.99, False),
    c(12, 2, 0.97, False),
    c(13, 2, 0.50, False),
    c(14, 3, 0.30, False),
    c(15, 3, 0.20, False),
]


def test_convincing_wrong_answer_takes_eighty_percent_wrong_then_best_of_the_rest():
    picks = s.convincing_wrong_answer(POOL, 5)
    # 4 wrong (by score), then the best remaining solution of any kind.
    assert ids(picks) == [1, 2, 4, 3, 11]
    assert [p.reason for p in picks] == [s.REASON_WRONG] * 4 + [s.REASON_REST]
    assert [p.score for p in picks] == [0.95, 0.90, 0.85, 0.40, 0.99]


def test_share_rounds_half_up_and_is_configurable():
    assert s.wrong_quota(5, 0.8) == 4
    assert s.wrong_quota(3, 0.5) == 2
    assert s.wrong_quota(1, 0.2) == 0
    picks = s.convincing_wrong_answer(POOL, 4, wrong_share=0.5)
    assert ids(picks) == [1, 2, 11, 12]
    assert ids(s.convincing_wrong_answer(POOL, 3, wrong_share=0.0)) == [11, 12, 1]
    assert ids(s.convincing_wrong_answer(POOL, 3, wrong_share=1.0)) == [1, 2, 4]


def test_the_rest_may_contain_wrong_answers_and_fills_when_wrong_ones_run_out():
    # 10 picks, quota 8 wrong, only 5 wrong exist: the rest fills up to 10.
    picks = s.convincing_wrong_answer(POOL, 10)
    assert ids(picks)[:5] == [1, 2, 4, 3, 5]
    assert sorted(ids(picks)[5:]) == [11, 12, 13, 14, 15]
    # Rest = highest-scoring remaining, whatever the grade.
    pool = [c(1, 1, 0.9, True), c(2, 1, 0.8, True), c(3, 1, 0.1, False)]
    assert ids(s.convincing_wrong_answer(pool, 2, wrong_share=0.5)) == [1, 2]


def test_per_problem_cap_spreads_the_batch_over_problems():
    picks = s.convincing_wrong_answer(POOL, 5, per_problem_cap=1)
    # Problem 1 contributes its best wrong answer only; then 4 (problem 2), 5 (problem 3).
    assert ids(picks) == [1, 4, 5]
    picks = s.convincing_wrong_answer(POOL, 6, per_problem_cap=2)
    counts: dict[int, int] = {}
    by_id = {x.solution_id: x for x in POOL}
    for p in picks:
        counts[by_id[p.solution_id].problem_id] = counts.get(by_id[p.solution_id].problem_id, 0) + 1
    assert max(counts.values()) <= 2
    assert ids(picks) == [1, 2, 4, 5, 12, 14]


def test_ties_break_by_ascending_solution_id():
    pool = [c(9, 1, 0.5, True), c(3, 2, 0.5, True), c(7, 3, 0.5, True), c(5, 1, 0.5, False)]
    assert ids(s.convincing_wrong_answer(pool, 4, wrong_share=0.5)) == [3, 7, 5, 9]
    # Input order does not matter.
    assert ids(s.convincing_wrong_answer(list(reversed(pool)), 4, wrong_share=0.5)) == [3, 7, 5, 9]


def test_empty_tiny_and_all_correct_pools():
    assert s.convincing_wrong_answer([], 10) == []
    assert ids(s.convincing_wrong_answer([c(1, 1, 0.3, False)], 10)) == [1]
    assert s.convincing_wrong_answer(POOL, 0) == []
    all_correct = [x for x in POOL if not x.is_wrong]
    picks = s.convincing_wrong_answer(all_correct, 3)
    assert ids(picks) == [11, 12, 13]
    assert {p.reason for p in picks} == {s.REASON_REST}


def test_per_problem_scope_splits_inside_each_problem_and_interleaves():
    pool = [
        c(1, 1, 0.9, True),
        c(2, 1, 0.8, True),
        c(3, 1, 0.99, False),
        c(4, 2, 0.7, True),
        c(5, 2, 0.6, False),
        c(6, 2, 0.5, False),
    ]
    picks = s.convincing_wrong_answer(pool, 10, scope="per_problem", per_problem=2, wrong_share=0.5)
    # Slot 1 of each problem (its best wrong answer), then slot 2 (best of the rest).
    assert ids(picks) == [1, 4, 3, 5]
    assert [p.reason for p in picks] == [
        s.REASON_WRONG,
        s.REASON_WRONG,
        s.REASON_REST,
        s.REASON_REST,
    ]
    assert ids(s.convincing_wrong_answer(pool, 3, scope="per_problem", per_problem=2)) == [1, 4, 2]
    with pytest.raises(StrategyError, match="per_problem"):
        s.convincing_wrong_answer(pool, 3, scope="per_problem")


def test_bad_parameters_and_unscored_pools_are_rejected():
    with pytest.raises(StrategyError, match="wrong_share"):
        s.convincing_wrong_answer(POOL, 3, wrong_share=1.5)
    with pytest.raises(StrategyError, match="per_problem_cap"):
        s.convincing_wrong_answer(POOL, 3, per_problem_cap=0)
    with pytest.raises(StrategyError, match="size"):
        s.uniform(POOL, -1)
    with pytest.raises(StrategyError, match="scope"):
        s.convincing_wrong_answer(POOL, 3, scope="local")
    with pytest.raises(StrategyError, match="no PRM score"):
        s.convincing_wrong_answer([c(1, 1, None, True)], 1)
    with pytest.raises(StrategyError, match="unknown strategy"):
        s.select(POOL, 3, "greedy")
    with pytest.raises(StrategyError, match="unknown parameters for uniform: wrong_share"):
        s.select(POOL, 3, "uniform", {"wrong_share": 0.5})


def test_uniform_is_seeded_and_deterministic():
    pool = [c(i, i % 7, None, i % 3 == 0) for i in range(1, 201)]
    a = s.uniform(pool, 20, seed=1)
    assert ids(a) == ids(s.uniform(list(reversed(pool)), 20, seed=1))
    assert ids(a) != ids(s.uniform(pool, 20, seed=2))
    assert len(set(ids(a))) == 20
    # Not simply the lowest ids: a random sample.
    assert ids(a) != list(range(1, 21))
    assert a[0].key == s.uniform_key(1, a[0].solution_id)
    capped = s.uniform(pool, 20, seed=1, per_problem_cap=2)
    assert len(capped) == 14  # 7 problems x 2
    assert s.uniform([], 5) == []


def test_uniform_is_roughly_uniform_over_the_pool():
    pool = [c(i, i, None, False) for i in range(1000)]
    firsts = [s.uniform(pool, 1, seed=seed)[0].solution_id for seed in range(300)]
    # Each half of the pool is hit about half the time.
    low = sum(1 for sid in firsts if sid < 500)
    assert 100 < low < 200


def test_uncertainty_prefers_the_step_closest_to_a_coin_flip():
    pool = [
        c(1, 1, 0.9, False, [(0.01, 0.0, 0.99), (0.05, 0.0, 0.95)]),  # margin 0.45
        c(2, 1, 0.5, True, [(0.02, 0.0, 0.98), (0.48, 0.0, 0.52)]),  # margin 0.02
        c(3, 2, 0.4, True, [(0.7, 0.0, 0.3)]),  # margin 0.2
        c(4, 2, 0.4, True, None),  # unknown: counts as certain (0.5)
        c(5, 3, 0.4, True, [(0.4, 0.1, 0.5)]),  # margin 0.1
    ]
    picks = s.uncertainty(pool, 4)
    assert ids(picks) == [2, 5, 3, 1]
    assert picks[0].key == pytest.approx(0.02)
    assert picks[0].score == 0.5
    assert ids(s.uncertainty(pool, 5, per_problem_cap=1)) == [2, 5, 3]
    assert s.step_margin([]) == 0.5


@pytest.mark.parametrize(
    "strategy,params,message",
    [
        ("convincing_wrong_answer", {"per_problem_cap": 2.5}, "per_problem_cap"),
        ("convincing_wrong_answer", {"per_problem_cap": True}, "per_problem_cap"),
        ("convincing_wrong_answer", {"wrong_share": "0.8"}, "wrong_share"),
        ("convincing_wrong_answer", {"scope": "per_problem", "per_problem": "3"}, "per_problem"),
        ("uniform", {"seed": "abc"}, "seed"),
    ],
)
def test_parameters_of_the_wrong_type_are_rejected(strategy, params, message):
    with pytest.raises(StrategyError, match=message):
        s.select(POOL, 3, strategy, params)
