"""Quality of a trained PRM on the held-out set: step AUROC and best-of-N accuracy."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from active_learning.simulation.base import Scorer
from training.prm.evaluate import top_pick_credit


def best_of_n_accuracy(heldout: Sequence[Any], scores: Sequence[Any]) -> float:
    """Share of held-out problems whose top-scored sample has a correct final answer.

    N is the number of samples the held-out set has per problem; a tie counts as a uniform random
    pick among the tied samples (`training.prm.evaluate.top_pick_credit`, best_of_n's rule).
    """
    groups: dict[str, tuple[list[float], list[bool]]] = {}
    for solution, sc in zip(heldout, scores, strict=True):
        values, correct = groups.setdefault(solution.problem_id or solution.problem, ([], []))
        values.append(sc.score)
        correct.append(bool(solution.is_correct))
    if not groups:
        return float("nan")
    return sum(top_pick_credit(v, c) for v, c in groups.values()) / len(groups)


def evaluate(
    scorer: Scorer,
    heldout: Sequence[Any],
    step_metrics: Callable[[list[Any], list[Any]], dict],
) -> dict[str, float]:
    scores = scorer.score([(s.problem, list(s.steps)) for s in heldout])
    metrics = step_metrics(list(scores), list(heldout))
    return {
        "step_auroc": float(metrics.get("step_auroc", float("nan"))),
        "best_of_n": best_of_n_accuracy(heldout, scores),
    }
