"""A sampling run through a real Celery worker on the gpu queue (tiny local model)."""

from __future__ import annotations

import time

import pytest
from django.db import transaction

from labeling.models import Problem, Solution
from training import sampling, tasks
from training.models import SamplingRun

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]


def _wait(run_id: int, timeout: float = 240) -> SamplingRun:
    deadline = time.time() + timeout
    while time.time() < deadline:
        run = SamplingRun.objects.get(id=run_id)
        if run.state in ("succeeded", "failed"):
            return run
        time.sleep(0.5)
    raise AssertionError(f"sampling run {run_id} still {run.state} after {timeout}s:\n{run.log}")


def test_sampling_on_the_gpu_queue(celery_worker_process, tiny_generator, settings):
    settings.STEPWISE_GENERATORS = {
        "tiny": {"backend": "local", "model": str(tiny_generator), "max_new_tokens": 12}
    }
    with transaction.atomic():
        for index in range(3):
            Problem.objects.create(text=f"What is {index} + 1?", reference_answer=str(index + 1))
        run, created = sampling.sampling_run_start(samples=2, generator="tiny")
        assert created
        # Sent only after commit: the worker never sees an uncommitted run.
        assert SamplingRun.objects.get(id=run.id).celery_task_id == ""

    run = _wait(run.id)
    assert run.state == "succeeded", run.error
    assert run.celery_task_id and run.attempts == 1 and run.progress == 1.0
    counts = run.counts
    assert counts["requested"] == 6
    assert sum(counts[k] for k in ("kept", "duplicates", "no_answer", "empty")) == 6
    assert Solution.objects.filter(source="generated").count() == counts["kept"]
    assert "problems 3/3" in run.log
    log = celery_worker_process.log_path.read_text()
    assert "training.sample_solutions" in log

    # A second delivery of a finished run does nothing.
    assert tasks.sample_solutions_task.delay(run_id=run.id).get(timeout=60) == "skipped"
    assert SamplingRun.objects.get(id=run.id).attempts == 1
