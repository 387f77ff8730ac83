"""Evaluation: step-level AUROC/accuracy, ProcessBench first-error F1, best-of-N search.

Conventions: a step's "goodness" is P(positive) + P(neutral) (neutral counts as not wrong, as in
the paper's default); a step is labeled good when its rating is 0 or 1, bad when -1.
"""

from __future__ import annotations

import bisect
import math
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .data import LabeledSolution

if TYPE_CHECKING:  # scoring needs torch; the metrics here do not
    from .score import SolutionScores

# (answer, answer) -> whether they are the same final answer
SameAnswer = Callable[[str, str], bool]


def _goodness(p: Sequence[float]) -> float:
    return float(p[1] + p[2])


def _auroc(labels: list[int], scores: list[float]) -> float:
    if len(set(labels)) < 2:
        return float("nan")
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def step_metrics(scores: list[SolutionScores], labeled: list[LabeledSolution]) -> dict[str, Any]:
    """AUROC of goodness for good-vs-bad steps, 3-class accuracy, binary accuracy at 0.5.

    Only rated steps up to and including the first -1 count (the ones a PRM is trained on).
    """
    if len(scores) != len(labeled):
        raise ValueError(f"{len(scores)} scores for {len(labeled)} solutions")
    y_good, goodness, correct3, correct2 = [], [], 0, 0
    for s, sol in zip(scores, labeled, strict=True):
        for index, rating in enumerate(sol.ratings):
            if index >= len(s.step_probs):
                break
            if rating is None:
                continue
            p = s.step_probs[index]
            y_good.append(1 if rating >= 0 else 0)
            goodness.append(_goodness(p))
            correct3 += int(max(range(3), key=p.__getitem__) == rating + 1)
            correct2 += int((goodness[-1] >= 0.5) == (rating >= 0))
            if rating == -1:
                break
    n = len(y_good)
    return {
        "step_auroc": _auroc(y_good, goodness),
        "step_accuracy": correct3 / n if n else float("nan"),
        "step_binary_accuracy": correct2 / n if n else float("nan"),
        "n_steps": n,
        "n_negative": n - sum(y_good),
    }


def outcome_metrics(scores: list[SolutionScores], labeled: list[LabeledSolution]) -> dict[str, Any]:
    """How well the solution score separates right from wrong final answers."""
    pairs = [(s.score, sol.is_correct) for s, sol in zip(scores, labeled, strict=True)]
    known = [(x, bool(c)) for x, c in pairs if c is not None]
    return {
        "solution_auroc": _auroc([int(c) for _, c in known], [x for x, _ in known]),
        "n_solutions": len(known),
    }


def first_error_metrics(pred_first_error: list[int], true_first_error: list[int]) -> dict[str, Any]:
    """ProcessBench: accuracy on erroneous solutions (exact first-error index), on correct ones
    (predicting -1), and their harmonic mean `f1`."""
    if len(pred_first_error) != len(true_first_error):
        raise ValueError("pred_first_error and true_first_error differ in length")
    err = [(p, t) for p, t in zip(pred_first_error, true_first_error, strict=True) if t != -1]
    ok = [(p, t) for p, t in zip(pred_first_error, true_first_error, strict=True) if t == -1]
    acc_err = sum(p == t for p, t in err) / len(err) if err else float("nan")
    acc_ok = sum(p == -1 for p, _ in ok) / len(ok) if ok else float("nan")
    if math.isnan(acc_err) or math.isnan(acc_ok):
        f1 = float("nan")
    elif acc_err + acc_ok == 0:
        f1 = 0.0
    else:
        f1 = 2 * acc_err * acc_ok / (acc_err + acc_ok)
    return {
        "acc_erroneous": acc_err,
        "acc_correct": acc_ok,
        "f1": f1,
        "n_erroneous": len(err),
        "n_correct": len(ok),
    }


def predict_first_error(scores: list[SolutionScores], threshold: float) -> list[int]:
    """Index of the first step whose goodness is below `threshold`, or -1 when none is."""
    out = []
    for s in scores:
        first = -1
        for index, p in enumerate(s.step_probs):
            if _goodness(p) < threshold:
                first = index
                break
        out.append(first)
    return out


def choose_threshold(scores: list[SolutionScores], true_first_error: list[int]) -> float:
    """The goodness threshold maximising first-error F1 on (validation) data.

    Candidates are midpoints between consecutive distinct goodness values, plus the ends, so the
    best achievable split is always among them; ties go to the threshold nearest 0.5 (then the
    lower one).

    O(n log n) in the number of steps: a solution's prediction at threshold t is the first step
    whose goodness is below t, so it depends only on its running minimum. A correct solution
    (truth -1) is right exactly when t <= its lowest goodness; an erroneous one with truth e is
    right exactly when goodness[e] < t <= min(goodness[:e]) (never when step e is not its
    first new low). Sorting those bounds once gives every candidate's F1 by binary search.
    """
    if len(scores) != len(true_first_error):
        raise ValueError(f"{len(scores)} scores for {len(true_first_error)} labels")
    lowest: list[float] = []  # per correct solution
    lower: list[float] = []  # per erroneous solution that can be right: goodness[e] < t ...
    upper: list[float] = []  # ... <= the minimum before it (inf for e = 0)
    n_erroneous = 0
    values: set[float] = set()
    for s, truth in zip(scores, true_first_error, strict=True):
        goodness = [_goodness(p) for p in s.step_probs]
        values.update(goodness)
        if truth == -1:
            lowest.append(min(goodness, default=math.inf))
            continue
        n_erroneous += 1
        before = min(goodness[:truth], default=math.inf)
        if truth < len(goodness) and goodness[truth] < before:
            lower.append(goodness[truth])
            upper.append(before)
    n_correct = len(lowest)
    lowest.sort()
    lower.sort()
    upper.sort()

    ordered = sorted(values)
    candidates = {0.0, 0.5, 1.0 + 1e-9}
    candidates.update((a + b) / 2 for a, b in zip(ordered, ordered[1:], strict=False))
    if ordered:
        candidates.update({ordered[0], ordered[-1] + 1e-9})
    best, best_key = 0.5, (-1.0, 0.0)
    for threshold in sorted(candidates):
        f1 = float("nan")
        if n_erroneous and n_correct:
            # bisect_left counts the values strictly below the threshold.
            right_err = bisect.bisect_left(lower, threshold) - bisect.bisect_left(upper, threshold)
            right_ok = n_correct - bisect.bisect_left(lowest, threshold)
            acc_err, acc_ok = right_err / n_erroneous, right_ok / n_correct
            f1 = 0.0 if acc_err + acc_ok == 0 else 2 * acc_err * acc_ok / (acc_err + acc_ok)
        key = (-1.0 if math.isnan(f1) else f1, -abs(threshold - 0.5))
        if key > best_key:
            best, best_key = threshold, key
    return best


@dataclass
class Candidate:
    """One sampled solution of a problem, for best-of-N search."""

    answer: str | None
    is_correct: bool
    scores: Mapping[str, float] = field(default_factory=dict)  # e.g. {"prm": .., "orm": ..}


def top_pick_credit(scores: Sequence[float], correct: Sequence[bool]) -> float:
    """Best-of-N's one tie rule: the expected correctness of picking the highest-scored
    candidate, ties broken uniformly at random (a sample's position in the list never decides).
    Used by `best_of_n` and by the active-learning simulation alike."""
    if len(scores) != len(correct):
        raise ValueError(f"{len(scores)} scores for {len(correct)} candidates")
    if not scores:
        raise ValueError("no candidates to pick from")
    top = max(scores)
    winners = [ok for value, ok in zip(scores, correct, strict=True) if value == top]
    return sum(map(bool, winners)) / len(winners)


def grader_same_answer(first: str, second: str) -> bool:
    """The platform grader's answer equivalence (`labeling/grading.py`, plain Python, no Django):
    `\\frac{1}{2}`, `1/2` and `0.5` are one answer."""
    from labeling.grading import same_answer

    return same_answer(first, second)


def answer_classes(
    answers: Sequence[str | None], same_answer: SameAnswer = grader_same_answer
) -> list[int | None]:
    """A class id per answer, equal for answers that `same_answer` calls the same (None: no
    answer). Each answer joins the first class whose first member it matches."""
    firsts: list[str] = []
    known: dict[str, int] = {}
    out: list[int | None] = []
    for answer in answers:
        if answer is None:
            out.append(None)
            continue
        if answer not in known:
            match = next((i for i, first in enumerate(firsts) if same_answer(answer, first)), None)
            if match is None:
                match = len(firsts)
                firsts.append(answer)
            known[answer] = match
        out.append(known[answer])
    return out


def _majority_credit(classes: Sequence[int | None], correct: Sequence[bool]) -> float:
    """Expected correctness of the most common answer class, ties broken uniformly at random."""
    counts = Counter(c for c in classes if c is not None)
    if not counts:
        return 0.0
    top = max(counts.values())
    tied = [c for c, n in counts.items() if n == top]
    correct_classes = {c for c, ok in zip(classes, correct, strict=True) if ok and c is not None}
    return sum(c in correct_classes for c in tied) / len(tied)


def _best_credit(candidates: Sequence[Candidate], method: str) -> float:
    return top_pick_credit(
        [c.scores[method] for c in candidates], [c.is_correct for c in candidates]
    )


def best_of_n(
    problems: Sequence[Sequence[Candidate]],
    *,
    ns: Sequence[int] = (1, 2, 4, 8, 16, 32, 64),
    trials: int = 400,
    seed: int = 0,
    methods: Sequence[str] | None = None,
    same_answer: SameAnswer = grader_same_answer,
) -> dict[str, dict[int, float]]:
    """Share of problems solved when picking 1 of N samples, averaged over `trials` subsamples.

    For every N and trial each problem contributes a random subset of N of its candidates (all
    of them when it has N or fewer; then trials add nothing). Each scorer in `methods` (default:
    every key of the candidates' `scores`) picks its highest-scored candidate; "majority" picks
    the most common answer, answers grouped by `same_answer` (the grader's equivalence by
    default). Ties count as the expected value of a uniform random pick.
    Returns {method: {N: accuracy}}.
    """
    problems = [list(p) for p in problems if p]
    if not problems:
        raise ValueError("best_of_n needs at least one problem with candidates")
    if trials < 1:
        raise ValueError("trials must be >= 1")
    if methods is None:
        methods = sorted({k for p in problems for c in p for k in c.scores})
    classes = [answer_classes([c.answer for c in p], same_answer) for p in problems]
    rng = random.Random(seed)
    table: dict[str, dict[int, float]] = {m: {} for m in [*methods, "majority"]}
    for n in ns:
        if n < 1:
            raise ValueError("every N must be >= 1")
        sums = dict.fromkeys(table, 0.0)
        for candidates, answer_class in zip(problems, classes, strict=True):
            exact = len(candidates) <= n
            for _ in range(1 if exact else trials):
                picked = range(len(candidates)) if exact else rng.sample(range(len(candidates)), n)
                sample = [candidates[i] for i in picked]
                weight = trials if exact else 1
                for method in methods:
                    sums[method] += weight * _best_credit(sample, method)
                sums["majority"] += weight * _majority_credit(
                    [answer_class[i] for i in picked], [c.is_correct for c in sample]
                )
        for method in table:
            table[method][n] = sums[method] / (trials * len(problems))
    return table


def candidates_from(
    solutions: Sequence[LabeledSolution], scores_by_method: Mapping[str, Sequence[SolutionScores]]
) -> list[list[Candidate]]:
    """Group solutions by problem into best-of-N candidates carrying each method's score."""
    groups: dict[str, list[Candidate]] = {}
    for index, sol in enumerate(solutions):
        key = sol.problem_id or sol.problem
        groups.setdefault(key, []).append(
            Candidate(
                answer=sol.answer,
                is_correct=bool(sol.is_correct),
                scores={m: s[index].score for m, s in scores_by_method.items()},
            )
        )
    return list(groups.values())
