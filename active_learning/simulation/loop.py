"""The rounds of the simulation: select, label with the oracle, train afresh, evaluate."""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from active_learning.simulation.base import (
    ARMS,
    CONTROL_ARM,
    METRICS,
    ArmStore,
    Scorer,
    StoreFactory,
    Trainer,
)
from active_learning.simulation.efficiency import EfficiencyRatio, efficiency_ratio
from active_learning.simulation.evaluation import evaluate


@dataclass
class SimulationSettings:
    rounds: int = 5
    per_round: int = 30
    seed: int = 0
    metric: str = "step_auroc"  # which quality the efficiency ratio compares
    control: bool = False  # also run the "wrong_random" arm

    @property
    def arms(self) -> tuple[str, ...]:
        return (*ARMS, CONTROL_ARM) if self.control else ARMS

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise ValueError("rounds must be at least 1")
        if self.per_round < 1:
            raise ValueError("per_round must be at least 1")
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {', '.join(METRICS)}")


@dataclass
class RoundResult:
    arm: str
    round: int
    strategy: str
    solutions_labeled: int
    steps_labeled: int
    wrong_answer_share: float  # of this round's batch: how many had a wrong final answer
    negative_share: float  # of this round's batch: how many got a negative step from the oracle
    step_auroc: float
    best_of_n: float
    train_seconds: float


@dataclass
class SimulationResult:
    settings: SimulationSettings
    rows: list[RoundResult] = field(default_factory=list)

    def curve(self, arm: str, metric: str | None = None) -> list[tuple[float, float]]:
        metric = metric or self.settings.metric
        return [
            (float(r.solutions_labeled), float(getattr(r, metric)))
            for r in self.rows
            if r.arm == arm
        ]

    def ratio(self, metric: str | None = None) -> EfficiencyRatio:
        return efficiency_ratio(self.curve("active", metric), self.curve("uniform", metric))


def check_budget(settings: SimulationSettings, *, pool_size: int, heldout_size: int) -> None:
    """Each arm labels rounds x per_round distinct solutions, so the pool must hold them."""
    if settings.per_round * settings.rounds > pool_size:
        raise ValueError(
            f"the pool has {pool_size} solutions, fewer than rounds x per_round = "
            f"{settings.rounds * settings.per_round}"
        )
    if heldout_size < 1:
        raise ValueError("the held-out set is empty")


@dataclass(frozen=True)
class RandomScore:
    """A stand-in PRM score for the control arm: no step probabilities, a seeded random value."""

    score: float
    step_probs: tuple = ()


def random_scores(count: int, seed: int) -> list[RandomScore]:
    rng = random.Random(f"control:{seed}")
    return [RandomScore(rng.random()) for _ in range(count)]


@dataclass
class _Run:
    """One simulation's fixed inputs, shared by its arms."""

    pool: list[Any]
    heldout: list[Any]
    oracle: Any
    trainer: Trainer
    step_metrics: Callable[[list[Any], list[Any]], dict]
    settings: SimulationSettings
    workdir: Path
    log: Callable[[str], None]


@dataclass
class _Arm:
    """Where one arm stands between rounds."""

    name: str
    store: ArmStore
    labeled_ids: list[int] = field(default_factory=list)
    steps_labeled: int = 0
    scorer: Scorer | None = None
    model_dir: str = ""


# Round 1 of the first arm: (picked pool ids, their labels, row, trained scorer).
_FirstRound = tuple[list[int], list[list[int]], "RoundResult", Scorer]


def simulate(
    *,
    pool: list[Any],
    heldout: list[Any],
    oracle: Any,
    trainer: Trainer,
    stores: StoreFactory,
    step_metrics: Callable[[list[Any], list[Any]], dict],
    settings: SimulationSettings,
    workdir: Path,
    log: Callable[[str], None] = lambda message: None,
) -> SimulationResult:
    """Run both arms and return one row per (arm, round). Deterministic for a given seed.

    Each arm gets its own store from ``stores``; the second arm's round 1 records the first
    arm's round-1 batch and reuses its model, so the two arms start from the same data.
    """
    check_budget(settings, pool_size=len(pool), heldout_size=len(heldout))
    run = _Run(pool, heldout, oracle, trainer, step_metrics, settings, workdir, log)
    result = SimulationResult(settings=settings)
    shared_first: _FirstRound | None = None
    for name in settings.arms:
        with stores(name, pool) as store:
            arm = _Arm(name, store)
            for round_number in range(1, settings.rounds + 1):
                if round_number == 1 and shared_first is not None:
                    row = _reuse_first_round(run, arm, shared_first)
                else:
                    row, picked, labels = _round(run, arm, round_number)
                    if round_number == 1 and shared_first is None:
                        shared_first = (list(picked), labels, row, arm.scorer)
                result.rows.append(row)
                log(_row_line(row))
    return result


def _reuse_first_round(run: _Run, arm: _Arm, shared_first: _FirstRound) -> RoundResult:
    """Same seed, same uniform pick: the other arm's round 1, recorded again."""
    picked, labels, first_row, arm.scorer = shared_first
    arm.model_dir = str(run.workdir / f"{ARMS[0]}-round1")
    arm.store.record(list(picked), [list(r) for r in labels])
    arm.labeled_ids = list(picked)
    arm.steps_labeled = first_row.steps_labeled
    return dataclasses.replace(first_row, arm=arm.name)


def _pick(run: _Run, arm: _Arm, remaining: list[int], round_seed: int) -> tuple[str, list[int]]:
    """The arm's strategy this round and the batch its store picks with it."""
    scores = None
    strategy = "uniform"
    if arm.name == "active" and arm.scorer is not None:
        strategy = "convincing_wrong_answer"
        pool = run.pool
        scores = list(arm.scorer.score([(pool[i].problem, list(pool[i].steps)) for i in remaining]))
    elif arm.name == CONTROL_ARM:
        strategy = "convincing_wrong_answer"
        scores = random_scores(len(remaining), round_seed)
    picked = arm.store.select(
        strategy, remaining, scores, run.settings.per_round, round_seed, model_dir=arm.model_dir
    )
    if (
        len(set(picked)) != len(picked)
        or len(picked) > run.settings.per_round
        or not set(arm.labeled_ids).isdisjoint(picked)
        or not set(picked) <= set(remaining)
    ):
        raise ValueError(f"the {strategy} selection returned an invalid batch: {picked}")
    return strategy, picked


def _round(
    run: _Run, arm: _Arm, round_number: int
) -> tuple[RoundResult, list[int], list[list[int]]]:
    """Select, label with the oracle, train afresh on every label so far, evaluate."""
    round_seed = run.settings.seed * 1000 + round_number
    taken = set(arm.labeled_ids)
    remaining = [i for i in range(len(run.pool)) if i not in taken]
    strategy, picked = _pick(run, arm, remaining, round_seed)
    batch = [run.pool[i] for i in picked]
    labels = [list(r) for r in run.oracle.label(batch)]
    arm.store.record(list(picked), labels)
    arm.labeled_ids.extend(picked)
    arm.steps_labeled += sum(len(r) for r in labels)
    training = arm.store.training_data()

    started = time.perf_counter()
    arm.model_dir = str(run.workdir / f"{arm.name}-round{round_number}")
    arm.scorer = run.trainer(training, run.settings.seed, Path(arm.model_dir))
    train_seconds = time.perf_counter() - started
    quality = evaluate(arm.scorer, run.heldout, run.step_metrics)
    row = RoundResult(
        arm=arm.name,
        round=round_number,
        strategy=strategy,
        solutions_labeled=len(arm.labeled_ids),
        steps_labeled=arm.steps_labeled,
        wrong_answer_share=_share(batch, lambda s: s.is_correct is False),
        negative_share=_share(labels, lambda r: -1 in r),
        step_auroc=quality["step_auroc"],
        best_of_n=quality["best_of_n"],
        train_seconds=round(train_seconds, 2),
    )
    return row, picked, labels


def _share(items: Sequence[Any], predicate: Callable[[Any], bool]) -> float:
    return sum(1 for item in items if predicate(item)) / len(items) if items else 0.0


def _row_line(row: RoundResult) -> str:
    return (
        f"{row.arm:7s} round {row.round}: {row.solutions_labeled} solutions "
        f"({row.steps_labeled} steps, {row.wrong_answer_share:.0%} wrong answers) "
        f"step AUROC {row.step_auroc:.4f}  best-of-N {row.best_of_n:.3f}  "
        f"train {row.train_seconds:.1f}s"
    )
