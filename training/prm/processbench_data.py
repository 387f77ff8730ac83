"""Real step labels as `LabeledSolution`s: ProcessBench records and raw PRM800K lines, split by problem.

ProcessBench gives one index per solution, the earliest wrong step (`label`, -1 when every step is
right). That says the steps before it are right and the step at it is wrong; it says nothing about
the steps after it, so they stay unrated (and `training_targets` drops them). A raw PRM800K line
becomes one solution for its chosen trajectory plus one single-target branch per other rated
completion, its prefix unrated context: every human rating is exactly one training target.

ProcessBench is an evaluation benchmark; training on part of it is honest only when the split is
by problem and the figures come from the other part. `split_by_problem_key` assigns each problem
(whitespace-normalised text, shared across files) to one of train / validation / test by a stable
hash, so the same problem never lands on two sides whichever file it came from.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .data import LabeledSolution

SPLITS = ("train", "validation", "test")


def problem_key(problem: str) -> str:
    """The identity of a problem across files: its text with whitespace runs collapsed."""
    normalised = " ".join(problem.split())
    return hashlib.sha256(normalised.encode()).hexdigest()[:16]


def labeled_from_processbench(record: dict[str, Any], *, source: str) -> LabeledSolution:
    """Positive before the earliest wrong step, negative at it, nothing after it."""
    steps = [str(step) for step in record["steps"]]
    label = int(record["label"])
    if not steps:
        raise ValueError(f"{source} record {record.get('id')!r} has no steps")
    if not -1 <= label < len(steps):
        raise ValueError(
            f"{source} record {record.get('id')!r}: label {label} is outside 0..{len(steps) - 1}"
        )
    ratings: list[int | None] = [1] * (len(steps) if label == -1 else label)
    if label != -1:
        ratings.append(-1)
    correct = record.get("final_answer_correct")
    return LabeledSolution(
        problem=record["problem"],
        steps=steps,
        ratings=ratings,
        problem_id=problem_key(record["problem"]),
        is_correct=None if correct is None else bool(correct),
    )


def load_processbench(path: str | Path, *, source: str | None = None) -> list[LabeledSolution]:
    """A ProcessBench JSON list (as published) -> one LabeledSolution per record."""
    with open(path) as fh:
        records = json.load(fh)
    if not isinstance(records, list):
        raise ValueError(f"{path}: expected a JSON list of ProcessBench records")
    name = source or Path(path).stem
    return [labeled_from_processbench(record, source=name) for record in records]


def first_error(solution: LabeledSolution) -> int:
    """Index of the first negative rating, or -1 (ProcessBench's `label` for our records)."""
    for index, rating in enumerate(solution.ratings):
        if rating == -1:
            return index
    return -1


def labeled_from_prm800k_line(line: dict[str, Any]) -> list[LabeledSolution]:
    """One raw PRM800K line -> its chosen trajectory plus a branch per other rated completion.

    The trajectory follows the chosen completion (or the labeler's own completion, which has no
    rating) and stops at a step where neither exists. A rated completion that is not on the
    trajectory is a branch: the trajectory so far as unrated context, then that step, rated.
    A rating of -1 on the trajectory itself ends the trajectory's solution (training stops at the
    first -1); the ratings after it become branches so that none is lost or trained twice.
    """
    problem = line["question"]["problem"]
    key = problem_key(problem)
    steps: list[str] = []
    ratings: list[int | None] = []
    branches: list[LabeledSolution] = []
    main_closed_at: int | None = None  # trajectory length when its first -1 was reached

    def branch(prefix: list[str], text: str, rating: int) -> LabeledSolution:
        return LabeledSolution(
            problem=problem,
            steps=[*prefix, text],
            ratings=[None] * len(prefix) + [rating],
            problem_id=key,
        )

    for step in line["label"]["steps"]:
        completions = step.get("completions") or []
        chosen = step.get("chosen_completion")
        for index, completion in enumerate(completions):
            if index != chosen and completion.get("rating") is not None:
                branches.append(branch(steps, completion["text"], int(completion["rating"])))
        if chosen is not None and chosen < len(completions):
            text, rating = completions[chosen]["text"], completions[chosen].get("rating")
        elif step.get("human_completion"):
            text, rating = step["human_completion"]["text"], None
        else:
            break
        if main_closed_at is not None and rating is not None:
            branches.append(branch(steps, text, int(rating)))
            rating = None
        steps.append(text)
        ratings.append(None if rating is None else int(rating))
        if rating == -1 and main_closed_at is None:
            main_closed_at = len(steps)
    out = []
    if any(r is not None for r in ratings):
        out.append(LabeledSolution(problem=problem, steps=steps, ratings=ratings, problem_id=key))
    return out + branches


def load_prm800k(paths: Iterable[str | Path]) -> list[LabeledSolution]:
    """Raw PRM800K lines from several files; a line seen twice (same JSON) is read once."""
    seen: set[str] = set()
    out: list[LabeledSolution] = []
    for path in paths:
        with open(path) as fh:
            for number, text in enumerate(fh, 1):
                if not text.strip():
                    continue
                try:
                    line = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number}: not JSON ({exc})") from exc
                canonical = json.dumps(
                    {"q": line["question"]["problem"], "l": line["label"]}, sort_keys=True
                )
                if canonical in seen:
                    continue
                seen.add(canonical)
                out.extend(labeled_from_prm800k_line(line))
    return out


def split_of(key: str, *, validation_fraction: float, test_fraction: float, salt: str) -> str:
    """Stable split of one problem key: the first 8 bytes of sha256 as a share of 2**64."""
    digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    share = int.from_bytes(digest[:8], "big") / 2**64
    if share < test_fraction:
        return "test"
    if share < test_fraction + validation_fraction:
        return "validation"
    return "train"


def split_by_problem_key(
    solutions: Sequence[LabeledSolution],
    *,
    validation_fraction: float = 0.15,
    test_fraction: float = 0.3,
    salt: str = "paper-comparisons",
) -> dict[str, list[LabeledSolution]]:
    """{train, validation, test}: every solution of a problem lands in the same split."""
    if validation_fraction < 0 or test_fraction < 0 or validation_fraction + test_fraction >= 1:
        raise ValueError("validation_fraction and test_fraction must be >= 0 and sum below 1")
    out: dict[str, list[LabeledSolution]] = {name: [] for name in SPLITS}
    for solution in solutions:
        key = solution.problem_id or problem_key(solution.problem)
        name = split_of(
            key, validation_fraction=validation_fraction, test_fraction=test_fraction, salt=salt
        )
        out[name].append(solution)
    return out
