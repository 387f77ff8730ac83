"""The round loop with injected training (a counting scorer), so its bookkeeping is checked fast."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from active_learning.simulation import (
    KnownCorrectnessOracle,
    SelectionParams,
    SimulationSettings,
    load_result,
    memory_store,
    simulate,
    write_report,
)


@dataclass
class Sol:
    problem: str
    steps: list[str]
    ratings: list[int | None]
    problem_id: str = ""
    is_correct: bool | None = None
    answer: str | None = None


@dataclass
class Scores:
    step_probs: list[tuple[float, float, float]]
    score: float


class LengthScorer:
    """Scores a solution by how many steps it has (deterministic, no training)."""

    def score(self, items):
        return [Scores([(0.1, 0.1, 0.8)] * len(steps), float(len(steps))) for _, steps in items]


def make_pool(problems: int, samples: int) -> list[Sol]:
    pool = []
    for p in range(problems):
        for s in range(samples):
            wrong = s % 2 == 1
            steps = [f"p{p}s{s}t{t}" for t in range(1 + (p + s) % 4)]
            ratings = [1] * (len(steps) - 1) + [-1 if wrong else 1]
            pool.append(Sol(f"problem {p}", steps, ratings, f"p{p}", not wrong, str(s % 2)))
    return pool


def run(tmp_path, trainings, rounds=3, per_round=5, seed=0, stores=None, pool=None):
    def trainer(labeled, seed, workdir):
        trainings.append([(s.steps[0], list(s.ratings)) for s in labeled])
        return LengthScorer()

    return simulate(
        pool=pool or make_pool(10, 4),
        heldout=make_pool(3, 4),
        oracle=KnownCorrectnessOracle(),
        trainer=trainer,
        stores=stores or memory_store(SelectionParams(per_problem_cap=1)),
        step_metrics=lambda scores, labeled: {"step_auroc": 0.5 + 0.01 * len(trainings)},
        settings=SimulationSettings(rounds=rounds, per_round=per_round, seed=seed),
        workdir=tmp_path,
    )


def test_both_arms_grow_by_the_budget_and_share_round_one(tmp_path):
    trainings: list = []
    result = run(tmp_path, trainings)
    rows = [(r.arm, r.round, r.strategy, r.solutions_labeled) for r in result.rows]
    assert rows == [
        ("active", 1, "uniform", 5),
        ("active", 2, "convincing_wrong_answer", 10),
        ("active", 3, "convincing_wrong_answer", 15),
        ("uniform", 1, "uniform", 5),
        ("uniform", 2, "uniform", 10),
        ("uniform", 3, "uniform", 15),
    ]
    # round 1 is trained once and reused: 1 + 2 + 2 trainings
    assert len(trainings) == 5
    # each training is a fresh model on every label so far, without repeats
    for labeled in trainings:
        firsts = [first for first, _ in labeled]
        assert len(firsts) == len(set(firsts))
    # labels are phase-2 ratings: nothing after the first -1
    for labeled in trainings:
        for _, ratings in labeled:
            assert -1 not in ratings[:-1]


def test_active_rounds_pick_convincing_wrong_answers(tmp_path):
    result = run(tmp_path, [])
    active = {r.round: r for r in result.rows if r.arm == "active"}
    # 80% of 5 = 4 wrong answers, at most one per problem, highest score (most steps) first
    assert active[2].wrong_answer_share == pytest.approx(0.8)
    assert active[3].wrong_answer_share == pytest.approx(0.8)


def test_same_seed_same_table_and_another_seed_differs(tmp_path):
    a = run(tmp_path, [], seed=3)
    b = run(tmp_path, [], seed=3)
    c = run(tmp_path, [], seed=4)
    # training time is wall clock, the only column allowed to differ
    assert [replace(r, train_seconds=0) for r in a.rows] == [
        replace(r, train_seconds=0) for r in b.rows
    ]
    assert [r.steps_labeled for r in a.rows] != [r.steps_labeled for r in c.rows]


def test_a_budget_larger_than_the_pool_is_refused(tmp_path):
    with pytest.raises(ValueError, match="fewer than rounds x per_round"):
        run(tmp_path, [], rounds=5, per_round=9)


def test_report_files(tmp_path):
    result = run(tmp_path, [])
    paths = write_report(result, tmp_path / "out", title="t")
    header = paths["csv"].read_text().splitlines()[0]
    assert header.startswith("arm,round,strategy,solutions_labeled,steps_labeled")
    assert len(paths["csv"].read_text().splitlines()) == 1 + 6
    assert "data efficiency on step_auroc (headline)" in paths["markdown"].read_text()
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the JSON holds everything needed to redraw the report
    again = write_report(load_result(paths["json"]), tmp_path / "again", title="t")
    for kind in ("csv", "markdown", "json"):
        assert again[kind].read_text() == paths[kind].read_text()


def test_the_control_arm_takes_wrong_answers_in_random_order(tmp_path):
    trainings: list = []

    def trainer(labeled, seed, workdir):
        trainings.append(len(labeled))
        return LengthScorer()

    result = simulate(
        pool=make_pool(10, 4),
        heldout=make_pool(3, 4),
        oracle=KnownCorrectnessOracle(),
        trainer=trainer,
        stores=memory_store(SelectionParams(per_problem_cap=None)),
        step_metrics=lambda scores, labeled: {"step_auroc": 0.5},
        settings=SimulationSettings(rounds=3, per_round=5, control=True),
        workdir=tmp_path,
    )
    rows = {(r.arm, r.round): r for r in result.rows}
    assert [a for a, _ in rows][::3] == ["active", "uniform", "wrong_random"]
    assert rows[("wrong_random", 1)].steps_labeled == rows[("active", 1)].steps_labeled
    for n in (2, 3):
        assert rows[("wrong_random", n)].strategy == "convincing_wrong_answer"
        assert rows[("wrong_random", n)].wrong_answer_share == pytest.approx(0.8)
    # random order, not the PRM's: the length scorer ranks long solutions first, the control
    # arm does not follow it
    assert rows[("wrong_random", 3)].steps_labeled != rows[("active", 3)].steps_labeled
    assert len(trainings) == 1 + 2 * 3
