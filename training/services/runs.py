"""Training, evaluation and scoring runs: starting them, claiming them, reporting, the sweep.

The claim, the fence (attempt token), the heartbeat and the sweep are the shared job runner's
(`config.jobs`); this module binds it to `TrainingRun` and says what a failed run leaves behind.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from config.jobs import AttemptSuperseded, KeepAlive, Progress, Reporter, RunRows
from training.models import PRMVersion, TrainingRun
from training.services.errors import TrainingError
from training.services.versions import ready_version

__all__ = ["AttemptSuperseded", "RunReporter"]


# --------------------------------------------------------------------------- artifacts


def checkpoint_dir_for(version: PRMVersion) -> Path:
    return Path(settings.STEPWISE_ARTIFACT_DIR) / "prm" / f"{version.id}-{slugify(version.name)}"


def staging_dir(run: TrainingRun) -> Path:
    return (
        Path(settings.STEPWISE_ARTIFACT_DIR) / "prm" / ".staging" / f"run{run.id}-a{run.attempts}"
    )


def resume_dir(run: TrainingRun) -> Path:
    """The run's resume state: one per run, not per attempt, so a retry continues it."""
    return Path(settings.STEPWISE_ARTIFACT_DIR) / "prm" / ".staging" / f"run{run.id}-resume"


# --------------------------------------------------------------------------- the run rows


def enqueue_run(run: TrainingRun) -> bool:
    """Send the run's task; False when the broker is unreachable (the run stays queued and the
    beat sweep sends it once the broker is back: `config.publish`)."""
    from training import tasks  # tasks import services

    task = {
        TrainingRun.Kind.TRAIN: tasks.train_prm_version_task,
        TrainingRun.Kind.EVALUATE: tasks.evaluate_prm_version_task,
        TrainingRun.Kind.SCORE: tasks.score_solutions_task,
    }[run.kind]
    return RUNS.publish(run, task)


def _on_fail(run: TrainingRun) -> None:
    """A failed training fails its version; no attempt will continue its resume state."""
    if run.kind == TrainingRun.Kind.TRAIN:
        PRMVersion.objects.filter(id=run.prm_version_id, state=PRMVersion.State.TRAINING).update(
            state=PRMVersion.State.FAILED
        )
        shutil.rmtree(resume_dir(run), ignore_errors=True)


RUNS = RunRows(TrainingRun, label="run", on_fail=_on_fail, enqueue=enqueue_run)


def training_run_claim(*, run_id: int) -> TrainingRun | None:
    """Take the run for this process, or None when there is nothing to do (`RunRows.claim`)."""
    return RUNS.claim(run_id)


def lock_owned(run_id: int, attempt: int) -> TrainingRun:
    """Lock the run and check this attempt still owns it (the fence; inside a transaction)."""
    return RUNS.lock_owned(run_id, attempt)


def keep_alive(run: TrainingRun) -> KeepAlive:
    """The attempt's heartbeat thread (see `config.jobs.KeepAlive`)."""
    return RUNS.keep_alive(run.id, run.attempts)


class RunReporter(Reporter):
    """Progress, log lines and heartbeat of a training run's attempt."""

    def __init__(self, run: TrainingRun, echo: Progress | None = None):
        super().__init__(RUNS, run, echo)


def training_runs_sweep_stale() -> dict[str, int]:
    """Sweep: running runs whose worker is gone (or silent too long) are sent again while they
    have attempts left, and fail after that. Returns {"retried": n, "failed": m}."""
    return RUNS.sweep()


def training_runs_publish_unpublished() -> int:
    """Sweep: queued runs whose task never reached the broker are sent (`RunRows.
    publish_unpublished`). Returns how many the broker took."""
    return RUNS.publish_unpublished()


# --------------------------------------------------------------------------- starting runs


@transaction.atomic
def training_run_start(
    *, prm_version_id: int, activate: bool = False, enqueue: bool = True
) -> TrainingRun:
    """Queue the training of a version; the task is sent once the transaction commits."""
    version = PRMVersion.objects.select_for_update().get(id=prm_version_id)
    if version.state not in (PRMVersion.State.TRAINING, PRMVersion.State.FAILED):
        raise TrainingError(f"{version.name} is {version.state}: train a new version instead")
    if version.state == PRMVersion.State.FAILED:
        version.state = PRMVersion.State.TRAINING
        version.save(update_fields=["state"])
    try:
        with transaction.atomic():
            run = TrainingRun.objects.create(
                prm_version=version, kind=TrainingRun.Kind.TRAIN, params={"activate": activate}
            )
    except IntegrityError as exc:
        raise TrainingError(f"{version.name} is already being trained") from exc
    if enqueue:
        transaction.on_commit(lambda: enqueue_run(run))
    return run


@transaction.atomic
def evaluation_run_start(
    *, prm_version_id: int, processbench_path: str | None = None, enqueue: bool = True
) -> TrainingRun:
    ready_version(prm_version_id)
    if processbench_path and not Path(processbench_path).is_file():
        raise ValidationError({"processbench_path": [f"{processbench_path!r} is not a file."]})
    run = TrainingRun.objects.create(
        prm_version_id=prm_version_id,
        kind=TrainingRun.Kind.EVALUATE,
        params={"processbench_path": processbench_path},
    )
    if enqueue:
        transaction.on_commit(lambda: enqueue_run(run))
    return run


@transaction.atomic
def scoring_run_start(
    *, prm_version_id: int, solution_ids: list[int] | None = None, enqueue: bool = True
) -> TrainingRun:
    ready_version(prm_version_id)
    run = TrainingRun.objects.create(
        prm_version_id=prm_version_id,
        kind=TrainingRun.Kind.SCORE,
        params={"solution_ids": solution_ids},
    )
    if enqueue:
        transaction.on_commit(lambda: enqueue_run(run))
    return run
