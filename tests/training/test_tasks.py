"""Training, scoring and evaluation through a real Celery worker on the test Redis and DB."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import transaction

from config.celery import app
from config.jobs import process_alive
from labeling.models import Solution
from tests.conftest import ROOT
from tests.training.conftest import TINY_HYPERPARAMETERS
from training import services, tasks
from training.models import PRMVersion, SolutionScore, TrainingRun

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]


def _wait(run_id: int, states: set[str], timeout: float = 240) -> TrainingRun:
    deadline = time.time() + timeout
    while time.time() < deadline:
        run = TrainingRun.objects.get(id=run_id)
        if run.state in states:
            return run
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} still {run.state} after {timeout}s:\n{run.log}")


def test_train_score_and_rerun_on_a_real_worker(
    celery_worker_process, tiny_backbone, synthetic_labelings
):
    with transaction.atomic():
        version = services.prm_version_create(
            name="tiny-1",
            base_model=tiny_backbone,
            hyperparameters=TINY_HYPERPARAMETERS,
            heldout_fraction=0.25,  # 4 of the 8 problems, with both good and bad steps
        )
        run = services.training_run_start(prm_version_id=version.id, activate=True)
        # Enqueued only after commit: the worker never sees an uncommitted run.
        assert TrainingRun.objects.get(id=run.id).celery_task_id == ""

    run = _wait(run.id, {"succeeded", "failed"})
    assert run.state == "succeeded", run.error
    assert run.progress == 1.0 and run.attempts == 1 and run.celery_task_id
    assert "training and" in run.log
    version.refresh_from_db()
    # Nothing to regress against, but a dozen held-out solutions are below the promotion
    # minimum (the worker runs with the default settings): it stays ready, and the log says why.
    assert version.state == "ready"
    assert "stays ready: its metrics were measured on" in run.log
    assert "promoted to active" not in run.log
    checkpoint = Path(version.checkpoint_path)
    assert checkpoint.is_dir() and any(checkpoint.iterdir())
    assert checkpoint.name == f"{version.id}-tiny-1"
    # Staging and temp directories are gone: only finished checkpoints remain.
    assert not list(checkpoint.parent.glob(".staging/run*"))
    assert not list(checkpoint.parent.glob("*.tmp-*"))
    assert 0.0 <= version.metrics["step_auroc"] <= 1.0
    assert version.metrics["train_labeled_steps"] > 0
    assert version.data_snapshot["solutions"] == len(synthetic_labelings)
    assert "worker" in celery_worker_process.log_path.read_text()

    # A second delivery of a finished run does nothing.
    again = tasks.train_prm_version_task.delay(run_id=run.id)
    assert again.get(timeout=60) == "skipped"
    assert TrainingRun.objects.get(id=run.id).attempts == 1

    # Scoring: every solution once, and a rerun rewrites the same rows.
    with transaction.atomic():
        score_run = services.scoring_run_start(prm_version_id=version.id)
    score_run = _wait(score_run.id, {"succeeded", "failed"})
    assert score_run.state == "succeeded", score_run.error
    assert score_run.params["result"] == {"scored": len(synthetic_labelings)}
    first = dict(SolutionScore.objects.values_list("solution_id", "score"))
    ids = set(SolutionScore.objects.values_list("id", flat=True))
    assert set(first) == set(Solution.objects.values_list("id", flat=True))
    step_probs = SolutionScore.objects.first().step_probabilities
    assert len(step_probs[0]) == 3 and abs(sum(step_probs[0]) - 1) < 1e-4

    # Evaluation through the worker stores its metrics on the version.
    eval_run = services.evaluation_run_start(prm_version_id=version.id)
    eval_run = _wait(eval_run.id, {"succeeded", "failed"})
    assert eval_run.state == "succeeded", eval_run.error
    version.refresh_from_db()
    assert version.metrics["evaluation"]["step_auroc"] == pytest.approx(
        version.metrics["step_auroc"], abs=1e-6
    )

    assert services.score_solutions(prm_version_id=version.id) == len(synthetic_labelings)
    assert SolutionScore.objects.count() == len(synthetic_labelings)
    assert set(SolutionScore.objects.values_list("id", flat=True)) == ids
    again = dict(SolutionScore.objects.values_list("solution_id", "score"))
    assert again == pytest.approx(first, abs=1e-5)


def test_duplicate_delivery_does_not_start_a_second_training(
    celery_worker_process, tiny_backbone, synthetic_labelings
):
    version = services.prm_version_create(
        name="tiny-dup", base_model=tiny_backbone, hyperparameters=TINY_HYPERPARAMETERS
    )
    run = services.training_run_start(prm_version_id=version.id, enqueue=False)
    # Two deliveries at once; the fixture's worker runs two tasks in parallel.
    results = [tasks.train_prm_version_task.delay(run_id=run.id) for _ in range(2)]
    outcomes = sorted(r.get(timeout=300) for r in results)
    assert outcomes == ["skipped", "succeeded"]
    run.refresh_from_db()
    assert run.attempts == 1 and run.state == "succeeded"
    version.refresh_from_db()
    assert version.state == "ready"  # not asked to activate


def _start_worker(queue: str, tmp_path: Path, extra_env: dict) -> subprocess.Popen:
    """Our own worker (as the session fixture does), so the test may kill it."""
    from tests.conftest import _test_database_url

    env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "DATABASE_CONN_MAX_AGE": "0",
        **extra_env,
    }
    cmd = [
        sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queue,
        "--concurrency", "1", "--pool", "prefork", "-n", f"{queue}-{os.getpid()}@%h",
        "--without-gossip", "--without-mingle", "--loglevel", "INFO",
    ]  # fmt: skip
    log = open(tmp_path / f"{queue}.log", "w")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    proc.log_path = tmp_path / f"{queue}.log"  # type: ignore[attr-defined]
    proc.queue = queue  # type: ignore[attr-defined]
    return proc


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def _wait_training_started(run_id: int, proc: subprocess.Popen) -> TrainingRun:
    deadline = time.time() + 180
    while time.time() < deadline:
        run = TrainingRun.objects.get(id=run_id)
        if run.state == "running" and "examples" in run.log:
            return run
        assert proc.poll() is None, proc.log_path.read_text()
        time.sleep(0.2)
    raise AssertionError(f"training did not start:\n{proc.log_path.read_text()}")


@pytest.fixture
def active_version(tmp_path) -> PRMVersion:
    checkpoint = tmp_path / "active-checkpoint"
    checkpoint.mkdir()
    return PRMVersion.objects.create(
        name="serving", base_model="/m", state="active", checkpoint_path=str(checkpoint),
        metrics={"step_auroc": 0.5},
    )  # fmt: skip


def _assert_nothing_half_written_is_active(version, active_version, artifacts: Path) -> None:
    version.refresh_from_db()
    active_version.refresh_from_db()
    assert version.state == "failed" and version.checkpoint_path == ""
    assert active_version.state == "active"  # still the one serving
    assert not (artifacts / "prm" / f"{version.id}-{version.name}").exists()


def test_worker_child_killed_mid_training_is_retried_on_redelivery(
    tiny_backbone, synthetic_labelings, active_version, tmp_path
):
    artifacts = tmp_path / "artifacts"
    queue = f"gpu-kill-{os.getpid()}"
    proc = _start_worker(
        queue,
        tmp_path,
        {"STEPWISE_ARTIFACT_DIR": str(artifacts), "STEPWISE_TRAINING_MAX_ATTEMPTS": "2"},
    )
    try:
        version = services.prm_version_create(
            name="tiny-killed",
            base_model=tiny_backbone,
            hyperparameters={**TINY_HYPERPARAMETERS, "epochs": 500},  # long enough to kill
        )
        run = services.training_run_start(prm_version_id=version.id, enqueue=False)
        tasks.train_prm_version_task.apply_async(kwargs={"run_id": run.id}, queue=queue)
        run = _wait_training_started(run.id, proc)
        child = int(run.worker.rsplit(":", 1)[1])
        assert child != proc.pid
        # Attempt 1 has read its config; make the retry short, then kill the pool process
        # mid-training, as an OOM kill would.
        PRMVersion.objects.filter(id=version.id).update(
            hyperparameters={**TINY_HYPERPARAMETERS, "epochs": 1}
        )
        os.kill(child, signal.SIGKILL)
        final = artifacts / "prm" / f"{version.id}-tiny-killed"
        assert not final.exists()

        # acks_late + reject_on_worker_lost: the task comes back at once; the claim sees the
        # dead attempt, throws its staging away and trains again.
        run = _wait(run.id, {"succeeded", "failed"}, timeout=180)
        assert run.state == "succeeded", run.log + run.error
        assert run.attempts == 2 and "attempt 1 lost" in run.log
        version.refresh_from_db()
        active_version.refresh_from_db()
        assert version.state == "ready" and active_version.state == "active"
        assert version.checkpoint_path == str(final) and final.is_dir()
        assert not list((artifacts / "prm" / ".staging").glob(f"run{run.id}-a*"))
    finally:
        _stop(proc)
        app.control.purge()


def _wait_dead(pid: int, timeout: float = 30) -> None:
    deadline = time.time() + timeout  # the kernel tears the orphaned pool process down meanwhile
    while process_alive(pid) and time.time() < deadline:
        time.sleep(0.2)


def test_whole_worker_killed_mid_training_is_retried_by_the_sweep(
    tiny_backbone, synthetic_labelings, active_version, tmp_path, settings
):
    """Nobody is left to redeliver: the sweep notices the dead attempt and sends the run again."""
    artifacts = tmp_path / "artifacts"
    fast = {"STEPWISE_JOB_HEARTBEAT_SECONDS": "0.5", "STEPWISE_ARTIFACT_DIR": str(artifacts)}
    proc = _start_worker(f"gpu-dead-{os.getpid()}", tmp_path, fast)
    version = services.prm_version_create(
        name="tiny-dead",
        base_model=tiny_backbone,
        hyperparameters={**TINY_HYPERPARAMETERS, "epochs": 500},
    )
    run = services.training_run_start(prm_version_id=version.id, enqueue=False)
    try:
        tasks.train_prm_version_task.apply_async(kwargs={"run_id": run.id}, queue=proc.queue)
        child = int(_wait_training_started(run.id, proc).worker.rsplit(":", 1)[1])
        # The keep-alive thread beats while the training thread is busy.
        first = TrainingRun.objects.get(id=run.id).heartbeat_at
        _wait_heartbeat_after(run.id, first, proc)
    finally:
        _stop(proc)  # SIGKILL to the whole worker: nobody is left to notice
    app.control.purge()  # the unacknowledged message would come back only hours later
    assert TrainingRun.objects.get(id=run.id).state == "running"
    _wait_dead(child)
    PRMVersion.objects.filter(id=version.id).update(
        hyperparameters={**TINY_HYPERPARAMETERS, "epochs": 1}
    )

    # The beat sweep (default queue, another process) sees the worker's process is gone and
    # sends the run again, to the gpu queue, where a new worker takes it up.
    second = _start_worker("gpu", tmp_path, fast)
    try:
        assert services.training_runs_sweep_stale() == {"retried": 1, "failed": 0}
        run = _wait(run.id, {"succeeded", "failed"}, timeout=180)
    finally:
        _stop(second)
        app.control.purge()
    assert run.state == "succeeded", run.log + run.error
    assert run.attempts == 2 and "attempt 1 lost" in run.log and "sent again" in run.log
    version.refresh_from_db()
    assert version.state == "ready"


def _wait_heartbeat_after(run_id: int, after, proc: subprocess.Popen) -> None:
    deadline = time.time() + 60
    while time.time() < deadline:
        if TrainingRun.objects.get(id=run_id).heartbeat_at > after:
            return
        assert proc.poll() is None, proc.log_path.read_text()
        time.sleep(0.2)
    raise AssertionError("the heartbeat did not move")
