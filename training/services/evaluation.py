"""Evaluating a finished version: held-out metrics on its own snapshot, optionally ProcessBench."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from config.jobs import Progress
from training import datasets
from training.models import PRMVersion
from training.services.errors import json_safe
from training.services.versions import ready_version, version_data


def _first_error(solution) -> int | None:
    """Index of the first negative step, -1 when every step is rated and none is, else None."""
    if -1 in solution.ratings:
        return solution.ratings.index(-1)
    if len(solution.ratings) == len(solution.steps) and None not in solution.ratings:
        return -1
    return None


def _outcome_auroc(data: datasets.TrainingData, scores: list) -> dict[str, Any]:
    """Solution-level AUROC of the scores against the final answers' grades (when both occur)."""
    by_id = {id(s): score for s, score in zip(data.heldout, scores, strict=True)}
    outcome = [
        (by_id[id(s)].score, s.is_correct) for s in data.heldout_main if s.is_correct is not None
    ]
    if len({label for _, label in outcome}) != 2:
        return {}
    from sklearn.metrics import roc_auc_score

    auroc = roc_auc_score([int(label) for _, label in outcome], [score for score, _ in outcome])
    return {"solution_auroc": float(auroc), "n_outcome_solutions": len(outcome)}


def heldout_metrics(
    checkpoint: str, data: datasets.TrainingData, *, progress: Progress | None = None
) -> dict[str, Any]:
    from training.prm.evaluate import step_metrics
    from training.prm.score import RewardModelScorer

    if not data.heldout:
        return {"heldout_examples": 0}
    scorer = RewardModelScorer.from_checkpoint(checkpoint)
    scores = scorer.score([(s.problem, s.steps) for s in data.heldout])
    if progress:
        progress(0.5, "scored held-out examples")
    metrics: dict[str, Any] = {
        "heldout_examples": len(data.heldout),
        "heldout_solutions": len(data.heldout_main),
    }
    metrics.update(step_metrics(scores, data.heldout))
    # Longer than the training context: scored on their leading steps only, as trained.
    metrics["truncated_examples"] = sum(s.truncated > 0 for s in scores)
    metrics.update(_outcome_auroc(data, scores))
    return {
        k: (float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v)
        for k, v in metrics.items()
    }


def _processbench(
    version: PRMVersion, data: datasets.TrainingData, processbench_path: str
) -> dict[str, Any]:
    """ProcessBench F1 by the benchmark's protocol (threshold from held-out labels only)."""
    from training.prm.evaluate import choose_threshold
    from training.prm.processbench import (
        evaluate_processbench,
        load_processbench,
        problem_text_key,
    )
    from training.prm.score import RewardModelScorer

    items = load_processbench(processbench_path)
    benchmark = {problem_text_key(item["problem"]) for item in items}
    trained = {problem_text_key(s.problem) for s in data.train}
    kept = [item for item in items if problem_text_key(item["problem"]) not in trained]
    scorer = RewardModelScorer.from_checkpoint(version.checkpoint_path)
    labeled = [(s, _first_error(s)) for s in data.heldout_main]
    labeled = [
        (s, e) for s, e in labeled if e is not None and problem_text_key(s.problem) not in benchmark
    ]
    if labeled:
        val_scores = scorer.score([(s.problem, s.steps) for s, _ in labeled])
        threshold = choose_threshold(val_scores, [e for _, e in labeled])
        threshold_source = "held-out labels"
    else:
        threshold, threshold_source = 0.5, "default (no held-out labels)"
    return {
        "file": str(processbench_path),
        "items": len(items),
        "excluded_trained_problems": len(items) - len(kept),
        "threshold_source": threshold_source,
        "n_threshold_solutions": len(labeled),
        **evaluate_processbench(scorer, kept, threshold=threshold),
    }


def evaluate_prm_version(
    *,
    prm_version_id: int,
    processbench_path: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Held-out metrics of a finished version (on its own snapshot), optionally ProcessBench.

    ProcessBench follows the benchmark's protocol: the threshold is chosen on the held-out labels
    (leaving out any problem of the benchmark file), never on the benchmark, and F1 is reported
    on the whole file except records of problems the version was trained on (counted).
    Results are stored under `metrics["evaluation"]`.
    """
    version = ready_version(prm_version_id)
    report = progress or (lambda fraction, message="": None)
    report(0.0, "building the held-out split")
    data = version_data(version)
    result = heldout_metrics(version.checkpoint_path, data)
    report(0.5, "held-out metrics done")
    if processbench_path:
        result["processbench"] = _processbench(version, data, processbench_path)
    report(0.95, "storing metrics")
    with transaction.atomic():
        version = PRMVersion.objects.select_for_update().get(id=prm_version_id)
        evaluation = json_safe({**result, "at": timezone.now().isoformat()})
        version.metrics = {**version.metrics, "evaluation": evaluation}
        version.save(update_fields=["metrics"])
    return result
