"""Labelings in the database -> `LabeledSolution`s for training and held-out evaluation.

One pass of three streamed queries, each ordered by solution id and merged in Python, so memory
holds one solution's rows at a time (plus the result lists the trainer needs anyway):
solutions (with problem text and grade), their steps, and their labeled steps (completions
aggregated per step by Postgres).

Rules (docs/training.md explains why):
- Each labeled solution appears once. Several labelings of one solution are merged per step:
  majority rating among the labelers who rated that step; a tie goes to the lower rating (a step
  that half the labelers call wrong is not trained as right). Disagreements are also kept as soft
  targets (the share of votes per rating) when the trainer supports them.
- Ratings run up to and including the first negative merged step; later ratings are dropped.
- Rated completions other than the solution's own step (phase 2 alternatives after the first
  error, phase 1 candidates not chosen) become extra branches: the solution's prefix plus that
  step. Only that last step is rated (same merge rule); the prefix is unrated context, since its
  ratings are trained on the solution itself. A branch after an earlier negative step is dropped.
- Every rated input (prefix + step) is one training target: identical inputs pool their votes,
  whether several labelers rated them or one labeler saw the same text twice.
- Quality-control and screening solutions with gold ratings use the gold ratings, once,
  whatever number of labelers saw them. Screening labelings of solutions without gold are
  ignored: they come from candidates who had not passed screening yet.
- `give_up` labelings keep the prefix they rated; candidates rated at the step where the labeler
  stopped (none chosen, none written) are all branches. A `bad_problem` report drops every solution of
  that problem: one report is enough to keep a doubtful problem out of training.
- Held-out split by problem: a stable hash of the problem's source id (else its primary key).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.contrib.postgres.aggregates import ArrayAgg
from django.db.models import Max, Q

from labeling.models import LabeledStep, Labeling, LabelingTask, Solution, Step
from training.prm.data import LabeledSolution

MERGE_RULE = "majority, ties to the lower rating"
STREAM_CHUNK = 2000


@dataclass
class TrainingData:
    train: list[LabeledSolution] = field(default_factory=list)
    heldout: list[LabeledSolution] = field(default_factory=list)
    # The held-out solutions themselves (no branches): first-error and outcome metrics use them.
    heldout_main: list[LabeledSolution] = field(default_factory=list)
    snapshot: dict[str, Any] = field(default_factory=dict)


def is_heldout(problem_key: str, fraction: float) -> bool:
    """Stable across processes and databases: the first 8 bytes of sha256 as a share of 2**64."""
    digest = hashlib.sha256(f"stepwise-heldout:{problem_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def current_max_labeling_id() -> int:
    return Labeling.objects.aggregate(m=Max("id"))["m"] or 0


def merge_votes(votes: list[int]) -> int:
    """Majority rating; a tie goes to the lowest tied rating."""
    counts = Counter(votes)
    best = max(counts.values())
    return min(r for r, c in counts.items() if c == best)


def _soft(votes: list[int]) -> tuple[float, float, float]:
    n = len(votes)
    return (votes.count(-1) / n, votes.count(0) / n, votes.count(1) / n)


_HAS_SOFT = "soft_ratings" in {f.name for f in dataclasses.fields(LabeledSolution)}


def _grouped(rows: Iterator[tuple], key_index: int = 0) -> Iterator[tuple[int, list[tuple]]]:
    """Consecutive rows sharing row[key_index] (the stream is ordered by it)."""
    current_key, bucket = None, []
    for row in rows:
        if row[key_index] != current_key and bucket:
            yield current_key, bucket
            bucket = []
        current_key = row[key_index]
        bucket.append(row)
    if bucket:
        yield current_key, bucket


class _Follower:
    """Walks an ordered grouped stream in step with the driving solution stream."""

    def __init__(self, groups: Iterator[tuple[int, list[tuple]]]):
        self._groups = groups
        self._head = next(groups, None)

    def take(self, solution_id: int) -> list[tuple]:
        while self._head is not None and self._head[0] < solution_id:
            self._head = next(self._groups, None)
        if self._head is not None and self._head[0] == solution_id:
            rows = self._head[1]
            self._head = next(self._groups, None)
            return rows
        return []


def _own_completion(chosen: int | None, texts: list[str], step_text: str | None) -> int | None:
    """Which completion is the solution's own step; None when none is (a human wrote the step, or
    the labeler stopped here, e.g. gave up after rating every candidate)."""
    if chosen is not None:
        return chosen
    if step_text is None:  # past the solution's last step
        return None
    for index, text in enumerate(texts):
        if text == step_text:
            return index
    return None


def build_training_data(
    *,
    max_labeling_id: int | None = None,
    heldout_fraction: float = 0.1,
    graded_up_to: int | None = None,
) -> TrainingData:
    """Training and held-out `LabeledSolution`s from labelings with id <= max_labeling_id.

    `graded_up_to` (outcome models): graded solutions with id <= it that nobody labeled are added
    too, with no step ratings, only their final-answer correctness, as the paper's ORM was
    trained on generator samples checked against the reference answer.
    """
    if max_labeling_id is None:
        max_labeling_id = current_max_labeling_id()
    labelings = Labeling.objects.filter(id__lte=max_labeling_id)
    bad_problems = labelings.filter(finish_reason=Labeling.FinishReason.BAD_PROBLEM).values(
        "solution__problem_id"
    )
    gold_by_solution = dict(
        LabelingTask.objects.filter(
            kind__in=[LabelingTask.Kind.QUALITY_CONTROL, LabelingTask.Kind.SCREENING],
            gold_ratings__isnull=False,
        )
        .order_by("solution_id", "id")  # the newest task's gold wins
        .values_list("solution_id", "gold_ratings")
    )
    # Screening answers count only through gold; everything else votes.
    voting = labelings.exclude(solution__problem_id__in=bad_problems).exclude(
        Q(is_screening=True) & ~Q(solution_id__in=list(gold_by_solution))
    )
    used = Q(id__in=voting.values("solution_id"))
    if graded_up_to is not None:
        used |= Q(
            id__lte=graded_up_to,
            grade__in=[Solution.Grade.CORRECT, Solution.Grade.WRONG],
        ) & ~Q(problem_id__in=bad_problems)
    solutions = (
        Solution.objects.filter(used)
        .order_by("id")
        .values_list(
            "id", "problem_id", "problem__source_id", "problem__text", "grade", "final_answer"
        )
        .iterator(chunk_size=STREAM_CHUNK)
    )
    steps = _Follower(
        _grouped(
            Step.objects.filter(solution__in=Solution.objects.filter(used))
            .order_by("solution_id", "position")
            .values_list("solution_id", "text")
            .iterator(chunk_size=STREAM_CHUNK)
        )
    )
    labeled_steps = _Follower(
        _grouped(
            LabeledStep.objects.filter(labeling__in=voting)
            .order_by("labeling__solution_id", "labeling_id", "position")
            .values_list(
                "labeling__solution_id",
                "labeling_id",
                "position",
                "chosen_completion",
                "has_human_completion",
                "human_completion_rating",
            )
            .annotate(
                texts=ArrayAgg("completions__text", order_by="completions__position"),
                ratings=ArrayAgg("completions__rating", order_by="completions__position"),
                positions=ArrayAgg("completions__position", order_by="completions__position"),
            )
            .iterator(chunk_size=STREAM_CHUNK)
        )
    )

    data = TrainingData()
    stats: Counter[str] = Counter()
    labeling_ids: set[int] = set()
    for solution_id, problem_id, source_id, problem_text, grade, final_answer in solutions:
        step_texts = [row[1] for row in steps.take(solution_id)]
        rows = labeled_steps.take(solution_id)
        labeling_ids.update(row[1] for row in rows)
        made = _solution_examples(
            problem_id=str(problem_id),
            problem_text=problem_text,
            grade=grade,
            final_answer=final_answer,
            step_texts=step_texts,
            rows=rows,
            gold=gold_by_solution.get(solution_id),
            stats=stats,
            outcome_only=graded_up_to is not None,
        )
        if not made:
            continue
        target = (
            data.heldout
            if is_heldout(source_id or str(problem_id), heldout_fraction)
            else data.train
        )
        target.extend(made)
        if target is data.heldout:
            data.heldout_main.append(made[0])
        stats["heldout_solutions" if target is data.heldout else "train_solutions"] += 1

    data.snapshot = {
        "max_labeling_id": max_labeling_id,
        "labelings": len(labeling_ids),
        "labelings_in_snapshot": labelings.count(),
        "bad_problem_labelings": labelings.filter(
            finish_reason=Labeling.FinishReason.BAD_PROBLEM
        ).count(),
        "merge_rule": MERGE_RULE,
        "heldout_fraction": heldout_fraction,
        **({"max_solution_id": graded_up_to} if graded_up_to is not None else {}),
        "train_examples": len(data.train),
        "heldout_examples": len(data.heldout),
        **{key: stats[key] for key in sorted(stats)},
    }
    return data


def _solution_examples(
    *,
    problem_id: str,
    problem_text: str,
    grade: str,
    final_answer: str | None,
    step_texts: list[str],
    rows: list[tuple],
    gold: list[int] | None,
    stats: Counter,
    outcome_only: bool = False,
) -> list[LabeledSolution]:
    """The merged solution and its branches; empty when nothing on it is rated."""
    # Votes per rated input: the solution's own step at a position, or an alternative step after
    # the solution's prefix. Identical inputs share their votes (several labelers, or one
    # labeler shown the same text twice), so each rated input is one training target.
    step_votes: dict[int, list[int]] = defaultdict(list)
    branch_votes: dict[tuple[int, str], list[int]] = defaultdict(list)
    for _sid, _lid, position, chosen, has_human, human_rating, texts, ratings, positions in rows:
        completions = [
            (text, rating)
            for text, rating, pos in zip(texts, ratings, positions, strict=True)
            if pos is not None
        ]
        step_text = step_texts[position] if position < len(step_texts) else None
        own = _own_completion(chosen, [t for t, _ in completions], step_text)
        if chosen is None and has_human and human_rating is not None:  # the human's step
            step_votes[position].append(human_rating)
        for index, (text, rating) in enumerate(completions):
            if rating is None:
                continue
            if index == own or text == step_text:
                step_votes[position].append(rating)
            else:
                branch_votes[(position, text)].append(rating)

    ratings: list[int | None]
    soft: list[tuple[float, float, float] | None] | None = None
    if gold is not None:
        ratings = list(gold)
        stats["gold_solutions"] += 1
    else:
        last = max(step_votes, default=-1)
        ratings = [
            merge_votes(step_votes[i]) if step_votes.get(i) else None for i in range(last + 1)
        ]
        if any(len(set(v)) > 1 for v in step_votes.values()):
            soft = [_soft(step_votes[i]) if step_votes.get(i) else None for i in range(last + 1)]
            stats["solutions_with_disagreement"] += 1
    ratings = ratings[: len(step_texts)]
    if -1 in ratings:
        ratings = ratings[: ratings.index(-1) + 1]
    if soft is not None:
        soft = soft[: len(ratings)]
    while ratings and ratings[-1] is None:
        ratings.pop()
    is_correct = {"correct": True, "wrong": False}.get(grade)
    if not ratings and not branch_votes:
        if outcome_only and is_correct is not None and step_texts:
            stats["outcome_only_solutions"] += 1
            return [
                LabeledSolution(
                    problem=problem_text,
                    steps=list(step_texts),
                    ratings=[],
                    problem_id=problem_id,
                    is_correct=is_correct,
                    answer=final_answer,
                )
            ]
        stats["solutions_without_ratings"] += 1
        return []

    main = LabeledSolution(
        problem=problem_text,
        steps=list(step_texts),
        ratings=ratings,
        problem_id=problem_id,
        is_correct=is_correct,
        answer=final_answer,  # majority vote and best-of-N group solutions by it
    )
    if soft is not None and _HAS_SOFT:
        main.soft_ratings = soft[: len(ratings)]
    made = [main]
    stats["solutions"] += 1
    stats["labeled_steps"] += sum(r is not None for r in ratings)
    first_negative = ratings.index(-1) if -1 in ratings else None
    for (position, text), votes in sorted(branch_votes.items()):
        if position > len(step_texts) or (first_negative is not None and position > first_negative):
            stats["branches_after_error_dropped"] += 1
            continue
        # The prefix is context only: its ratings are trained once, on the main solution.
        branch = LabeledSolution(
            problem=problem_text,
            steps=list(step_texts[:position]) + [text],
            ratings=[None] * position + [merge_votes(votes)],
            problem_id=problem_id,
            is_correct=None,
        )
        if len(set(votes)) > 1 and _HAS_SOFT:
            branch.soft_ratings = [None] * position + [_soft(votes)]
        made.append(branch)
        stats["branches"] += 1
        stats["labeled_steps"] += 1
    return made
