"""Doing a run: claim it, run its job under a heartbeat, close it (or fail it), fenced throughout.

The Celery tasks and the in-process commands call `training_run_execute`.
"""

from __future__ import annotations

import logging
import shutil
import traceback
from typing import Any

from django.db import transaction
from django.utils import timezone

from config.jobs import AttemptSuperseded, Progress, append_log
from training.models import TrainingRun
from training.services.errors import PromotionRefused, TrainingError, json_safe
from training.services.evaluation import evaluate_prm_version
from training.services.runs import (
    RUNS,
    RunReporter,
    keep_alive,
    lock_owned,
    staging_dir,
    training_run_claim,
)
from training.services.scoring import score_solutions
from training.services.train import train_job
from training.services.versions import prm_version_promote

logger = logging.getLogger(__name__)


def _job(run: TrainingRun, reporter: RunReporter) -> dict[str, Any]:
    if run.kind == TrainingRun.Kind.TRAIN:
        return train_job(run, reporter)
    if run.kind == TrainingRun.Kind.EVALUATE:
        return evaluate_prm_version(
            prm_version_id=run.prm_version_id,
            processbench_path=run.params.get("processbench_path"),
            progress=reporter,
        )
    count = score_solutions(
        prm_version_id=run.prm_version_id,
        solution_ids=run.params.get("solution_ids"),
        progress=reporter,
    )
    return {"scored": count}


def _record_failure(run: TrainingRun, reporter: RunReporter, exc: Exception) -> bool:
    """Fail the run with the error; False when this attempt had lost the run meanwhile."""
    if run.kind == TrainingRun.Kind.TRAIN:
        shutil.rmtree(staging_dir(run), ignore_errors=True)
    error = str(exc) if isinstance(exc, TrainingError) else "".join(traceback.format_exception(exc))
    try:
        reporter.flush()
    except AttemptSuperseded:
        return False
    return RUNS.fail_owned(run.id, reporter.attempt, error)


def _close(run_id: int, attempt: int, result: dict[str, Any]) -> TrainingRun:
    """Mark the run succeeded with its result (and promote, when asked) in one transaction."""
    with transaction.atomic():
        run = lock_owned(run_id, attempt)
        run.state, run.finished_at, run.progress = (
            TrainingRun.State.SUCCEEDED,
            timezone.now(),
            1.0,
        )
        run.params = {**run.params, "result": json_safe(result)}
        if run.kind == TrainingRun.Kind.TRAIN and run.params.get("activate"):
            # Same transaction: whoever sees the run succeeded also sees the promotion.
            try:
                with transaction.atomic():
                    prm_version_promote(prm_version_id=run.prm_version_id)
                append_log(run, "promoted to active")
            except PromotionRefused as exc:
                append_log(run, str(exc))
        run.save(update_fields=["state", "finished_at", "progress", "params", "log"])
    return run


def training_run_execute(*, run_id: int, echo: Progress | None = None) -> TrainingRun | None:
    """Do the work of a run. None when there was nothing to do (finished already, running
    elsewhere) or when this attempt lost the run to another one meanwhile."""
    run = training_run_claim(run_id=run_id)
    if run is None:
        return None
    reporter = RunReporter(run, echo)
    try:
        with keep_alive(run):
            result = _job(run, reporter)
    except AttemptSuperseded as exc:
        logger.warning("%s: stopping without writing", exc)
        return None
    except Exception as exc:
        if not _record_failure(run, reporter, exc):
            return None
        raise
    try:
        reporter(1.0, "done", force=True)
        return _close(run_id, reporter.attempt, result)
    except AttemptSuperseded as exc:
        logger.warning("%s: result dropped", exc)
        return None


def train_prm_version(*, run_id: int) -> TrainingRun | None:
    """Train a version through its `train` run: build data, train, evaluate, store, ready.

    None when there was nothing to do (finished already, or running elsewhere).
    """
    if TrainingRun.objects.filter(id=run_id).values_list("kind", flat=True).get() != "train":
        raise TrainingError(f"run {run_id} is not a training run")
    return training_run_execute(run_id=run_id)
