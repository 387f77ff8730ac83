"""What the simulation is made of: arms, metrics, and the shapes of a trainer, a scorer and an
arm's store."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from active_learning.strategies import DEFAULT_WRONG_SHARE

# A negative step is one the labeling PRM gives more than this probability of being negative
# (the paper's rule for letting PRM_large stand in for people).
PRM_ORACLE_NEGATIVE_THRESHOLD = 0.2

ARMS = ("active", "uniform")
CONTROL_ARM = "wrong_random"
METRICS = ("step_auroc", "best_of_n")


class Scorer(Protocol):
    def score(self, items: Sequence[tuple[str, list[str]]]) -> list[Any]: ...


# (labeled solutions so far, seed, work directory) -> a scorer for the freshly trained model
Trainer = Callable[[list[Any], int, Path], Scorer]


class ArmStore(Protocol):
    """Where one arm keeps its labels and how it picks the next batch.

    Candidates are named by their index in the pool.
    """

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
        """Up to ``size`` of the unlabeled ``pool_ids`` (most wanted first); ``scores`` are the
        arm's latest PRM scores of those candidates, None when the arm has no PRM yet, and
        ``model_dir`` where that PRM's trainer wrote it."""
        ...

    def record(self, pool_ids: list[int], ratings: list[list[int]]) -> None:
        """Store the oracle's ratings of these pool solutions."""
        ...

    def training_data(self) -> list[Any]:
        """Every label recorded so far, as training examples (``LabeledSolution``)."""
        ...


# (arm name, pool) -> a context in which the arm's store lives (the database store rolls back)
StoreFactory = Callable[[str, list[Any]], AbstractContextManager[ArmStore]]


@dataclass(frozen=True)
class SelectionParams:
    """The active arm's selection: the paper's 80/20 split, at most ``per_problem_cap`` solutions
    of one problem per batch (None = no cap). Uniform batches have no cap."""

    wrong_share: float = DEFAULT_WRONG_SHARE
    per_problem_cap: int | None = 2

    def strategy_params(self, strategy: str, seed: int) -> dict[str, Any]:
        if strategy == "uniform":
            return {"seed": seed}
        if strategy == "convincing_wrong_answer":
            return {"wrong_share": self.wrong_share, "per_problem_cap": self.per_problem_cap}
        raise ValueError(f"the simulation has no {strategy!r} arm")
