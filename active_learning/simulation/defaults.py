"""The default parts: a trainer on `training.prm` and an in-memory store on the strategies."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from active_learning.simulation.base import (
    ArmStore,
    Scorer,
    SelectionParams,
    StoreFactory,
    Trainer,
)
from active_learning.strategies import Candidate
from active_learning.strategies import select as select_strategy


@dataclass
class TrainingKnobs:
    """How each round's fresh PRM is trained (kept small: it runs once per round on CPU)."""

    backbone_dir: str
    epochs: float = 4.0
    learning_rate: float = 3e-3
    batch_tokens: int = 4096
    device: str | None = "cpu"


def default_trainer(knobs: TrainingKnobs) -> Trainer:
    """A Trainer that fine-tunes a fresh copy of the tiny backbone with training.prm."""
    from training.prm.config import TrainConfig
    from training.prm.score import RewardModelScorer
    from training.prm.train import train_reward_model

    def train(labeled: list[Any], seed: int, workdir: Path) -> Scorer:
        config = TrainConfig(
            base_model=knobs.backbone_dir,
            output_dir=str(workdir),
            objective="prm",
            epochs=knobs.epochs,
            learning_rate=knobs.learning_rate,
            batch_tokens=knobs.batch_tokens,
            seed=seed,
            device=knobs.device,
        )
        trained = train_reward_model(labeled, config)
        return RewardModelScorer.from_checkpoint(trained.checkpoint_dir, device=knobs.device)

    return train


def _candidates(solutions: list[Any], ids: list[int], scores: list[Any] | None) -> list[Candidate]:
    # Strategies key problems by int: number the problem ids in sorted order (stable per call).
    numbers = {
        pid: n for n, pid in enumerate(sorted({s.problem_id or s.problem for s in solutions}))
    }
    return [
        Candidate(
            solution_id=pool_id,
            problem_id=numbers[solution.problem_id or solution.problem],
            score=None if scores is None else float(scores[n].score),
            # An ungraded answer is not known to be wrong.
            is_wrong=solution.is_correct is False,
            step_probs=None if scores is None else scores[n].step_probs,
        )
        for n, (solution, pool_id) in enumerate(zip(solutions, ids, strict=True))
    ]


class MemoryStore:
    """An arm's labels in a Python list, selected by the pure ``strategies`` functions.

    The reference for ``simulation_db.DatabaseStore`` (same picks for the same input) and the
    fast store for tests of the loop.
    """

    def __init__(self, pool: list[Any], params: SelectionParams) -> None:
        self.pool = pool
        self.params = params
        self._training: list[Any] = []

    def select(
        self,
        strategy: str,
        pool_ids: list[int],
        scores: list[Any] | None,
        size: int,
        seed: int,
        *,
        model_dir: str = "",
    ) -> list[int]:
        del model_dir
        if strategy != "uniform" and scores is None:
            raise ValueError(f"{strategy} needs PRM scores")
        candidates = _candidates([self.pool[i] for i in pool_ids], pool_ids, scores)
        picks = select_strategy(
            candidates, size, strategy, self.params.strategy_params(strategy, seed)
        )
        return [p.solution_id for p in picks]

    def record(self, pool_ids: list[int], ratings: list[list[int]]) -> None:
        for pool_id, labels in zip(pool_ids, ratings, strict=True):
            self._training.append(dataclasses.replace(self.pool[pool_id], ratings=list(labels)))

    def training_data(self) -> list[Any]:
        return list(self._training)


def memory_store(params: SelectionParams | None = None) -> StoreFactory:
    """Each arm keeps its labels in memory (no database)."""

    @contextmanager
    def open_store(arm: str, pool: list[Any]) -> Iterator[ArmStore]:
        del arm
        yield MemoryStore(pool, params or SelectionParams())

    return open_store


def set_seed(seed: int) -> None:
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass
