"""The shared job runner (config.jobs): the keep-alive thread and the fence it respects."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from config.jobs import KeepAlive, Throttle, holder_alive, worker_identity
from training import services
from training.models import TrainingRun
from training.services.runs import RUNS

pytestmark = pytest.mark.django_db(transaction=True)


def _claimed(tmp_path) -> TrainingRun:
    version = services.prm_version_create(name="v", base_model=str(tmp_path))
    run = services.training_run_start(prm_version_id=version.id, enqueue=False)
    return services.training_run_claim(run_id=run.id)


def test_keep_alive_beats_while_the_job_thread_is_busy(tmp_path, settings):
    settings.STEPWISE_JOB_HEARTBEAT_SECONDS = 0.2
    run = _claimed(tmp_path)
    with RUNS.keep_alive(run.id, run.attempts):
        time.sleep(1.0)  # a long model call: no progress, no reporter write
        during = TrainingRun.objects.get(id=run.id).heartbeat_at
    assert during > run.heartbeat_at
    time.sleep(0.5)
    assert TrainingRun.objects.get(id=run.id).heartbeat_at == during  # stopped with the block


def test_keep_alive_of_a_superseded_attempt_beats_nothing(tmp_path, settings):
    settings.STEPWISE_JOB_HEARTBEAT_SECONDS = 0.1
    run = _claimed(tmp_path)
    # Another worker took the run over: the old attempt's thread must not keep it alive.
    old = timezone.now()
    TrainingRun.objects.filter(id=run.id).update(
        attempts=run.attempts + 1, worker="elsewhere:1", heartbeat_at=old
    )
    with RUNS.keep_alive(run.id, run.attempts):
        time.sleep(0.5)
    assert TrainingRun.objects.get(id=run.id).heartbeat_at == old


def test_a_failing_beat_does_not_stop_the_thread():
    calls = []

    def beat() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database away")

    with KeepAlive(beat, every=0.05):
        time.sleep(0.4)
    assert len(calls) >= 3


def test_holder_alive_by_process_here_and_by_heartbeat_elsewhere(settings):
    settings.STEPWISE_TRAINING_STALE_SECONDS = 60
    now = timezone.now()
    assert not holder_alive(worker_identity(), now)  # this process: its own earlier attempt
    assert holder_alive("gpu-box:1", now)
    assert not holder_alive("gpu-box:1", now - timezone.timedelta(seconds=61))
    assert not holder_alive("gpu-box:1", None)


def test_throttle_lets_one_call_through_per_period_and_every_final_one():
    throttle = Throttle(60)
    assert throttle.due()
    assert not throttle.due()
    assert throttle.due(final=True)
