"""A text-statistics step scorer: logistic regression on TF-IDF of the step, its length and index.

It reads no problem and no earlier step, so whatever it scores comes from how a step looks and
where it sits. On real step labels that is a strong baseline (wrong steps are longer, come later,
carry certain words), and a reward model's figure means something only when it beats this one.
It returns the same `SolutionScores` as the reward-model scorer, so every metric in `evaluate`
applies unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .data import LabeledSolution, training_targets
from .score import SolutionScores, aggregate_score


def labeled_steps(solutions: Sequence[LabeledSolution]) -> tuple[list[str], list[int], list[int]]:
    """(step text, step index, 1 = good / 0 = bad) for every step a PRM would be trained on."""
    texts, indices, good = [], [], []
    for solution in solutions:
        steps, targets = training_targets(solution, "prm")
        for index, (text, target) in enumerate(zip(steps, targets, strict=True)):
            if target is None:
                continue
            texts.append(text)
            indices.append(index)
            good.append(0 if target[0] >= 0.5 else 1)
    return texts, indices, good


class LexicalStepModel:
    """`fit` on labeled solutions, then `score` (problem, steps) items like `RewardModelScorer`."""

    def __init__(self, *, c: float = 1.0, max_features: int = 50_000, seed: int = 0) -> None:
        self.c = c
        self.max_features = max_features
        self.seed = seed
        # scikit-learn objects (untyped), set by fit.
        self._vectorizer: Any = None
        self._classifier: Any = None

    def _features(self, texts: Sequence[str], indices: Sequence[int]) -> Any:
        from scipy.sparse import csr_matrix, hstack

        # Length and index on a log scale, so a 40-step solution does not dwarf the words.
        numeric = np.array(
            [
                [math.log1p(len(text)), math.log1p(len(text.split())), math.log1p(i), float(i == 0)]
                for text, i in zip(texts, indices, strict=True)
            ]
        )
        return hstack([self._vectorizer.transform(texts), csr_matrix(numeric)]).tocsr()

    def fit(self, solutions: Sequence[LabeledSolution]) -> LexicalStepModel:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        texts, indices, good = labeled_steps(solutions)
        if len(set(good)) < 2:
            raise ValueError("the lexical baseline needs both good and bad steps to fit")
        self._vectorizer = TfidfVectorizer(
            ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=self.max_features
        ).fit(texts)
        self._classifier = LogisticRegression(C=self.c, max_iter=5000, random_state=self.seed)
        self._classifier.fit(self._features(texts, indices), np.array(good))
        return self

    def score(
        self, items: Sequence[tuple[str, Sequence[str]]], *, aggregate: str = "product"
    ) -> list[SolutionScores]:
        if self._classifier is None:
            raise RuntimeError("fit the lexical model before scoring")
        texts = [step for _, steps in items for step in steps]
        indices = [i for _, steps in items for i in range(len(steps))]
        good = self._classifier.predict_proba(self._features(texts, indices))[:, 1] if texts else []
        out, cursor = [], 0
        for _, steps in items:
            goodness = [float(g) for g in good[cursor : cursor + len(steps)]]
            cursor += len(steps)
            out.append(
                SolutionScores(
                    step_probs=[(1.0 - g, 0.0, g) for g in goodness],
                    score=aggregate_score(goodness, aggregate),
                )
            )
        return out
