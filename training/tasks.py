"""Celery tasks. The `training.*` ones run on the `gpu` queue (a worker with --concurrency 1).

Each takes a run id and calls the service; the run row makes a rerun or a duplicate delivery
harmless (see `config.jobs.RunRows.claim`). Failures are recorded on the run and not retried:
a training that raised will raise again. A worker lost mid-run is handled by redelivery
(acks_late + reject_on_worker_lost) and by the stale-run sweep, which sends the run again.

The beat tasks (sweep, retrain check) are named outside `training.*` so they run on the default
queue: a busy or dead GPU worker must not stop the sweep that notices it died.
"""

from __future__ import annotations

import os
import sys

from celery import shared_task
from celery.signals import worker_process_init

from training import services


@worker_process_init.connect
def _limit_torch_threads(**_kwargs) -> None:
    # On a shared CPU box a training task should not take every core (STEPWISE_TORCH_THREADS).
    # Without importing torch here: that takes seconds on a loaded machine, and a pool process
    # not up within worker_proc_alive_timeout (4 s) is killed and replaced, again and again, so
    # a task redelivered after a lost child never runs. torch reads OMP_NUM_THREADS on import.
    threads = int(os.environ.get("STEPWISE_TORCH_THREADS", "0") or 0)
    if threads > 0:
        os.environ["OMP_NUM_THREADS"] = str(threads)
        if "torch" in sys.modules:  # imported before the fork: too late for the variable
            sys.modules["torch"].set_num_threads(threads)


@shared_task(name="training.train_prm_version", acks_late=True)
def train_prm_version_task(*, run_id: int) -> str:
    run = services.train_prm_version(run_id=run_id)
    return run.state if run else "skipped"


@shared_task(name="training.evaluate_prm_version", acks_late=True)
def evaluate_prm_version_task(*, run_id: int) -> str:
    run = services.training_run_execute(run_id=run_id)
    return run.state if run else "skipped"


@shared_task(name="training.score_solutions", acks_late=True)
def score_solutions_task(*, run_id: int) -> str:
    run = services.training_run_execute(run_id=run_id)
    return run.state if run else "skipped"


@shared_task(name="training.sample_solutions", acks_late=True)
def sample_solutions_task(*, run_id: int) -> str:
    """Sample a candidate pool (gpu queue). A generator failure is recorded on the run, not
    retried: a server that refused the request would refuse it again."""
    from training import sampling

    run = sampling.sampling_run_execute(run_id=run_id)
    return run.state if run else "skipped"


@shared_task(name="stepwise.training.sweep_stale_runs")
def sweep_stale_runs_task() -> dict[str, int]:
    """Beat task (every minute, default queue). Runs (training and sampling) whose task never
    reached the broker (it was down when they started): sent now ("published"). Runs whose
    worker died: sent again ("retried"), or failed once out of attempts ("failed")."""
    from training import sampling

    published = services.training_runs_publish_unpublished()
    published += sampling.SAMPLING.publish_unpublished()
    counts = services.training_runs_sweep_stale()
    for key, value in sampling.sampling_runs_sweep_stale().items():
        counts[key] += value
    return {"published": published, **counts}


@shared_task(name="stepwise.training.retrain_if_enough_labels")
def retrain_if_enough_labels_task() -> int | None:
    version = services.retrain_if_needed()
    return version.id if version else None


@shared_task(name="stepwise.training.retrain_scheduled")
def retrain_scheduled_task() -> int | None:
    # On schedule, any new label is reason enough; identical data would give the same model.
    version = services.retrain_if_needed(min_new_labels=1)
    return version.id if version else None
