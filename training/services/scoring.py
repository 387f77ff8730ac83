"""Scoring solutions with a finished version: SolutionScore rows, upserted batch by batch."""

from __future__ import annotations

from collections.abc import Iterator

from django.db import transaction
from django.db.models import QuerySet

from config.jobs import Progress
from labeling.models import Solution, Step
from training import datasets
from training.models import SolutionScore
from training.services.versions import ready_version

SCORE_BATCH = 128


def _store_batch(scorer, prm_version_id: int, batch: list[tuple[int, str, list[str]]]) -> int:
    """Score one batch and upsert its rows (one transaction); returns how many were truncated."""
    scores = scorer.score([(problem, texts) for _, problem, texts in batch])
    rows = [
        SolutionScore(
            prm_version_id=prm_version_id,
            solution_id=solution_id,
            score=float(s.score),
            step_probabilities=[[float(p) for p in probs] for probs in s.step_probs],
        )
        for (solution_id, _, _), s in zip(batch, scores, strict=True)
    ]
    with transaction.atomic():
        SolutionScore.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["prm_version", "solution"],
            update_fields=["score", "step_probabilities"],
        )
    # Steps past the model's context are not scored (their probabilities are left out of
    # step_probabilities, which is then shorter than the solution); the log counts them.
    return sum(s.truncated > 0 for s in scores)


def _batches(solutions: QuerySet, batch_size: int) -> Iterator[list[tuple[int, str, list[str]]]]:
    """(solution id, problem text, step texts) in id order, `batch_size` at a time, streamed."""
    steps = datasets._Follower(
        datasets._grouped(
            Step.objects.filter(solution__in=solutions)
            .order_by("solution_id", "position")
            .values_list("solution_id", "text")
            .iterator(chunk_size=datasets.STREAM_CHUNK)
        )
    )
    stream = (
        solutions.order_by("id")
        .values_list("id", "problem__text")
        .iterator(chunk_size=datasets.STREAM_CHUNK)
    )
    batch: list[tuple[int, str, list[str]]] = []
    for solution_id, problem_text in stream:
        texts = [row[1] for row in steps.take(solution_id)]
        if texts:
            batch.append((solution_id, problem_text, texts))
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def score_solutions(
    *,
    prm_version_id: int,
    solution_ids: list[int] | None = None,
    only_missing: bool = False,
    batch_size: int = SCORE_BATCH,
    progress: Progress | None = None,
) -> int:
    """Score solutions (all when `solution_ids` is None) and upsert SolutionScore rows.

    Each batch is written with one bulk upsert in its own transaction, so a run cut short keeps
    what it wrote and a rerun overwrites rows with the same values (idempotent).
    Returns how many solutions were scored.
    """
    from training.prm.score import RewardModelScorer

    version = ready_version(prm_version_id)
    solutions = Solution.objects.all()
    if solution_ids is not None:
        solutions = solutions.filter(id__in=solution_ids)
    if only_missing:
        solutions = solutions.exclude(scores__prm_version_id=prm_version_id)
    total = solutions.count()
    report = progress or (lambda fraction, message="": None)
    report(0.0, f"scoring {total} solutions with {version.name}")
    if total == 0:
        return 0
    scorer = RewardModelScorer.from_checkpoint(version.checkpoint_path)
    done = truncated = 0
    for batch in _batches(solutions, batch_size):
        truncated += _store_batch(scorer, prm_version_id, batch)
        done += len(batch)
        note = f", {truncated} longer than the context (last steps unscored)" if truncated else ""
        report(done / total, f"scored {done}/{total}{note}")
    return done
