"""Oracle labelers: known final-answer correctness, or a large PRM standing in for people."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from active_learning.simulation.base import PRM_ORACLE_NEGATIVE_THRESHOLD, Scorer


def phase2_ratings(ratings: Sequence[int | None]) -> list[int]:
    """The ratings a phase-2 labeler hands in: every step up to and including the first -1.

    Labeling stops at the first unrated step too (imported labels may end early).
    """
    out: list[int] = []
    for rating in ratings:
        if rating is None:
            break
        out.append(int(rating))
        if rating == -1:
            break
    return out


def rating_from_prm(
    probs: tuple[float, float, float], *, threshold: float = PRM_ORACLE_NEGATIVE_THRESHOLD
) -> int:
    """One step's rating from a labeling PRM's (p_negative, p_neutral, p_positive).

    Negative when p_negative > threshold (strictly, as in the paper); otherwise the more likely
    of neutral and positive, positive on a tie.
    """
    p_negative, p_neutral, p_positive = probs
    if p_negative > threshold:
        return -1
    return 0 if p_neutral > p_positive else 1


class KnownCorrectnessOracle:
    """Labels with the correctness the world already knows (synthetic truth or imported labels)."""

    name = "known"

    def label(self, solutions: Sequence[Any]) -> list[list[int]]:
        return [phase2_ratings(solution.ratings) for solution in solutions]


class PRMOracle:
    """A reward model stands in for the labeler, with the paper's 20% rule."""

    name = "prm"

    def __init__(self, scorer: Scorer, *, threshold: float = PRM_ORACLE_NEGATIVE_THRESHOLD) -> None:
        self.scorer = scorer
        self.threshold = threshold

    def label(self, solutions: Sequence[Any]) -> list[list[int]]:
        if not solutions:
            return []
        scores = self.scorer.score([(s.problem, list(s.steps)) for s in solutions])
        return [
            phase2_ratings([rating_from_prm(p, threshold=self.threshold) for p in sc.step_probs])
            for sc in scores
        ]
