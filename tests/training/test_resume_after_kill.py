"""A training whose worker process is killed mid-run continues from its resume state.

A real Celery worker trains; once the library has written a resume state, the pool process is
killed (as an OOM kill would). Celery redelivers the task, the claim sees the dead attempt, and
attempt 2 passes the run's same resume directory, so it continues from the saved step instead of
starting over. The checkpoint it ends with is the one an uninterrupted training makes.
"""

from __future__ import annotations

import os
import re
import signal
import time

import pytest
import torch

from config.celery import app
from tests.training.conftest import TINY_HYPERPARAMETERS
from tests.training.test_tasks import _start_worker, _stop, _wait, _wait_training_started
from training import services, tasks
from training.models import TrainingRun
from training.prm import resume
from training.prm.config import TrainConfig
from training.prm.model import load_checkpoint
from training.prm.train import train_reward_model

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]

EVERY = 20  # optimizer steps between resume states
# About 800 optimizer steps: long enough to kill after the first state, short enough to finish.
HYPERPARAMETERS = {**TINY_HYPERPARAMETERS, "epochs": 400, "resume_every_steps": EVERY}


def _first_state(state_dir, proc, timeout: float = 240) -> int:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if (state_dir / resume.STATE_NAME).is_file():
            return resume.read_state(state_dir)["position"]["update"]
        assert proc.poll() is None, proc.log_path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"no resume state in {state_dir}:\n{proc.log_path.read_text()}")


def test_killed_training_resumes_from_its_last_state_and_ends_as_if_uninterrupted(
    tiny_backbone, synthetic_labelings, tmp_path
):
    artifacts = tmp_path / "artifacts"
    queue = f"gpu-resume-{os.getpid()}"
    proc = _start_worker(
        queue,
        tmp_path,
        # One torch thread in the worker and in the reference below: float sums can round
        # differently with another thread count, and the weights are compared to 1e-6.
        {
            "STEPWISE_ARTIFACT_DIR": str(artifacts),
            "STEPWISE_TRAINING_MAX_ATTEMPTS": "2",
            "STEPWISE_TORCH_THREADS": "1",
        },
    )
    try:
        version = services.prm_version_create(
            name="tiny-resumed", base_model=tiny_backbone, hyperparameters=HYPERPARAMETERS
        )
        run = services.training_run_start(prm_version_id=version.id, enqueue=False)
        tasks.train_prm_version_task.apply_async(kwargs={"run_id": run.id}, queue=queue)
        run = _wait_training_started(run.id, proc)
        child = int(run.worker.rsplit(":", 1)[1])
        state_dir = artifacts / "prm" / ".staging" / f"run{run.id}-resume"
        saved = _first_state(state_dir, proc)
        os.kill(child, signal.SIGKILL)
        assert saved >= EVERY

        run = _wait(run.id, {"succeeded", "failed"}, timeout=300)
        assert run.state == "succeeded", run.log + run.error
        assert run.attempts == 2 and "attempt 1 lost" in run.log
    finally:
        _stop(proc)
        app.control.purge()

    # Attempt 2 continued from a state of attempt 1 (the last one written before the kill).
    second = run.log[run.log.index("attempt 2 started") :]
    resumed = re.search(r"resumed from step (\d+) ", second)
    assert resumed, run.log
    step = int(resumed.group(1))
    assert step >= saved and step % EVERY == 0
    total = run.prm_version.metrics["train_optimizer_steps"]
    assert step < total
    trained = [int(n) for n in re.findall(r"step (\d+)/\d+ loss", second)]
    assert trained and min(trained) > step  # nothing before the state was trained again
    assert not state_dir.exists()  # the finished run's resume state is gone
    assert not list((artifacts / "prm" / ".staging").glob(f"run{run.id}-*"))

    # The same training without interruption, here in the test process, on the version's data.
    version = run.prm_version
    data = services.version_data(version)
    config = TrainConfig(
        base_model=version.base_model,
        output_dir=str(tmp_path / "uninterrupted"),
        objective=version.kind,
        **{k: v for k, v in HYPERPARAMETERS.items() if k in services.TRAIN_KEYS},
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the worker (an earlier test may have changed this process's)
    try:
        reference = train_reward_model(data.train, config)
    finally:
        torch.set_num_threads(threads)
    assert reference.metrics["optimizer_steps"] == total
    expected = load_checkpoint(reference.checkpoint_dir)[0].state_dict()
    actual = load_checkpoint(version.checkpoint_path)[0].state_dict()
    assert actual.keys() == expected.keys()
    for name, tensor in expected.items():
        torch.testing.assert_close(
            actual[name],
            tensor,
            rtol=0,
            atol=1e-6,
            msg=lambda m, name=name: f"{name} (resumed from step {step} of {total}): {m}",
        )
    assert TrainingRun.objects.get(id=run.id).params["result"]["checkpoint_path"]
