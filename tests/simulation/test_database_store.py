"""The simulation on the platform's own pieces: tables, SQL selection, training-data builder.

The in-memory store (pure strategies, a Python list of labels) is the reference: on the same
pool, with the same scores, the database store must pick the same batches and hand the trainer
the same examples, and leave nothing behind.
"""

from __future__ import annotations

import random

import pytest

from active_learning.simulation import MemoryStore, SelectionParams, memory_store
from active_learning.simulation_db import DatabaseStore, database_store
from labeling.models import Labeling, Problem, Solution
from training.models import PRMVersion, SolutionScore

from .test_loop import Scores, make_pool, run

pytestmark = pytest.mark.django_db


def scored(pool_ids, seed):
    """Random scores with many ties (steps of 0.25), so tie-breaks are exercised."""
    rng = random.Random(seed)
    return [Scores([(0.1, 0.1, 0.8)], rng.choice([0.0, 0.25, 0.5, 0.75, 1.0])) for _ in pool_ids]


@pytest.mark.parametrize("cap", [None, 1, 2])
def test_sql_selection_picks_what_the_pure_strategies_pick(cap):
    pool = make_pool(12, 5)
    params = SelectionParams(wrong_share=0.8, per_problem_cap=cap)
    memory = MemoryStore(pool, params)
    database = DatabaseStore("active", pool, params)
    database.load()
    labeled: list[int] = []
    for round_seed in range(1, 5):
        remaining = [i for i in range(len(pool)) if i not in labeled]
        for strategy in ("uniform", "convincing_wrong_answer"):
            scores = None if strategy == "uniform" else scored(remaining, round_seed)
            want = memory.select(strategy, remaining, scores, 7, round_seed)
            got = database.select(strategy, remaining, scores, 7, round_seed)
            assert got == want, (strategy, round_seed)
        # Labeled solutions leave the real candidate pool.
        database.record(want, [list(pool[i].ratings) for i in want])
        memory.record(want, [list(pool[i].ratings) for i in want])
        labeled.extend(want)
    assert len(labeled) == 28


def test_training_data_comes_from_the_builder_and_matches_the_labels():
    pool = make_pool(6, 4)
    database = DatabaseStore("uniform", pool, SelectionParams())
    database.load()
    memory = MemoryStore(pool, SelectionParams())
    picked = [3, 0, 17, 22, 9]
    # phase-2 labels: nothing after the first -1; a 0 in the middle stays a 0
    labels = [[1, 0, -1], [1], [1, 1], [-1], [0, 1]]
    labels = [lab[: len(pool[i].steps)] for i, lab in zip(picked, labels, strict=True)]
    database.record(picked, labels)
    memory.record(picked, labels)

    def key(s):
        return (s.problem, tuple(s.steps), tuple(s.ratings), s.is_correct)

    assert sorted(map(key, database.training_data())) == sorted(map(key, memory.training_data()))
    assert Labeling.objects.filter(source=Labeling.Source.SIMULATION).count() == 5


def test_the_whole_loop_on_the_database_equals_the_loop_in_memory(tmp_path):
    in_memory: list = []
    in_database: list = []
    params = SelectionParams(per_problem_cap=1)
    a = run(tmp_path, in_memory, stores=memory_store(params), seed=5)
    b = run(tmp_path, in_database, stores=database_store(params), seed=5)
    assert [r.steps_labeled for r in a.rows] == [r.steps_labeled for r in b.rows]
    assert [r.wrong_answer_share for r in a.rows] == [r.wrong_answer_share for r in b.rows]
    # the builder orders by solution id, the list by labeling order: same examples either way
    assert [sorted(t) for t in in_memory] == [sorted(t) for t in in_database]
    # each arm rolled back: the database holds nothing of the run
    assert not Problem.objects.exists()
    assert not Solution.objects.exists()
    assert not Labeling.objects.exists()
    assert not PRMVersion.objects.exists() and not SolutionScore.objects.exists()


def test_an_arm_sees_none_of_the_other_arms_labels(tmp_path):
    seen: list = []
    run(tmp_path, seen, stores=database_store(SelectionParams(per_problem_cap=1)), rounds=2)
    # trainings: active round 1 (shared), active round 2, uniform round 2
    assert [len(t) for t in seen] == [5, 10, 10]
