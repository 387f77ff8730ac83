"""The SQL strategies pick exactly what the pure reference strategies pick."""

from __future__ import annotations

import json
import random

import pytest
from django.db import connection

from active_learning import selection
from active_learning import strategies as s
from active_learning.strategies import Candidate, StrategyError

pytestmark = pytest.mark.django_db

POOL_SQL = selection.PoolQuery(
    "SELECT solution_id, problem_id, score, is_wrong, step_probs FROM h7_pool"
)


def random_pool(seed: int, n: int, problems: int) -> list[Candidate]:
    rng = random.Random(seed)
    pool = []
    for sid in rng.sample(range(1, 10 * n), n):
        # Coarse scores make many ties, which tie-breaking must settle identically.
        score = rng.choice([round(rng.random(), 2), rng.random()])
        probs = [
            (p, 0.0, 1.0 - p)
            for p in (rng.choice([rng.random(), round(rng.random(), 1)]) for _ in range(3))
        ]
        pool.append(
            Candidate(
                sid, rng.randrange(problems), score, rng.random() < 0.4, probs if sid % 5 else None
            )
        )
    return pool


def load(pool: list[Candidate]) -> None:
    with connection.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE IF NOT EXISTS h7_pool (solution_id bigint, problem_id bigint,"
            " score float8, is_wrong bool, step_probs jsonb)"
        )
        cur.execute("TRUNCATE h7_pool")
        cur.executemany(
            "INSERT INTO h7_pool VALUES (%s, %s, %s, %s, %s)",
            [
                (
                    c.solution_id,
                    c.problem_id,
                    c.score,
                    c.is_wrong,
                    None if c.step_probs is None else json.dumps(c.step_probs),
                )
                for c in pool
            ],
        )


CASES = [
    ("convincing_wrong_answer", {}),
    ("convincing_wrong_answer", {"per_problem_cap": 2}),
    ("convincing_wrong_answer", {"per_problem_cap": 1, "wrong_share": 0.5}),
    ("convincing_wrong_answer", {"wrong_share": 1.0, "per_problem_cap": 3}),
    ("convincing_wrong_answer", {"scope": "per_problem", "per_problem": 3}),
    ("convincing_wrong_answer", {"scope": "per_problem", "per_problem": 4, "per_problem_cap": 2}),
    ("uniform", {"seed": 7}),
    ("uniform", {"seed": 3, "per_problem_cap": 1}),
    ("uncertainty", {}),
    ("uncertainty", {"per_problem_cap": 2}),
]


@pytest.mark.parametrize("strategy,params", CASES)
@pytest.mark.parametrize("seed,size", [(1, 25), (2, 60), (3, 500)])
def test_sql_agrees_with_the_pure_strategy(strategy, params, seed, size):
    pool = random_pool(seed, n=300, problems=40)
    load(pool)
    expected = s.select(pool, size, strategy, params)
    got = selection.select_from_pool(POOL_SQL, size, strategy, params)
    assert [p.solution_id for p in got] == [p.solution_id for p in expected]
    assert [p.reason for p in got] == [p.reason for p in expected]
    assert [p.score for p in got] == [p.score for p in expected]
    if strategy == "uncertainty":
        assert [p.key for p in got] == [p.key for p in expected]
    assert len(got) == min(size, len(got)) and got  # never empty on this pool


def test_empty_and_all_correct_pools_in_sql():
    load([])
    assert selection.select_from_pool(POOL_SQL, 5, "convincing_wrong_answer") == []
    pool = [Candidate(i, i % 3, i / 10, False) for i in range(1, 8)]
    load(pool)
    got = selection.select_from_pool(POOL_SQL, 3, "convincing_wrong_answer", {"per_problem_cap": 2})
    assert [p.solution_id for p in got] == [7, 6, 5]
    assert {p.reason for p in got} == {s.REASON_REST}


def test_sql_rejects_bad_parameters_and_unscored_pools():
    load([])
    with pytest.raises(StrategyError, match="wrong_share"):
        selection.select_from_pool(POOL_SQL, 5, "convincing_wrong_answer", {"wrong_share": 2})
    unscored = selection.candidate_pool(prm_version_id=None)
    with pytest.raises(StrategyError, match="needs a PRM version"):
        selection.select_from_pool(unscored, 5, "convincing_wrong_answer")


def test_capped_selection_looks_past_a_problem_that_dominates_the_top_scores():
    # Problem 0 holds the 300 best scores; with a cap of 1 the batch must reach far down the
    # ranking (past the first windows the SQL tries) to find the other problems.
    pool = [Candidate(i, 0, 0.9 + i / 10_000, i % 2 == 0) for i in range(1, 301)]
    pool += [Candidate(1000 + p, p, p / 100, p % 3 == 0) for p in range(1, 31)]
    load(pool)
    for params in ({"per_problem_cap": 1}, {"per_problem_cap": 2, "wrong_share": 0.3}):
        expected = s.select(pool, 12, "convincing_wrong_answer", params)
        got = selection.select_from_pool(POOL_SQL, 12, "convincing_wrong_answer", params)
        assert [p.solution_id for p in got] == [p.solution_id for p in expected]
        assert len(got) == 12
    expected = s.select(pool, 12, "uncertainty", {"per_problem_cap": 1})
    got = selection.select_from_pool(POOL_SQL, 12, "uncertainty", {"per_problem_cap": 1})
    assert [p.solution_id for p in got] == [p.solution_id for p in expected]


def test_rest_part_is_empty_when_every_problem_is_full():
    pool = [Candidate(i, i, 0.5, True) for i in range(1, 6)]
    pool += [Candidate(10 + i, i, 0.9, False) for i in range(1, 6)]
    load(pool)
    params = {"per_problem_cap": 1, "wrong_share": 1.0}
    got = selection.select_from_pool(POOL_SQL, 8, "convincing_wrong_answer", params)
    assert [p.solution_id for p in got] == [1, 2, 3, 4, 5]
    assert [p.solution_id for p in s.select(pool, 8, "convincing_wrong_answer", params)] == [
        1,
        2,
        3,
        4,
        5,
    ]
