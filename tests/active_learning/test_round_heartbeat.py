"""A launching round's pipeline step beats like a run does (the shared job runner), so a sweep
can tell a step whose worker died from a slow one."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from active_learning import services
from config.jobs import worker_identity
from labeling.models import Generation

pytestmark = pytest.mark.django_db(transaction=True)


def _launching(**progress) -> Generation:
    return Generation.objects.create(number=0, state="launching", progress=progress)


def test_a_step_under_its_keep_alive_beats_while_busy(settings):
    settings.STEPWISE_JOB_HEARTBEAT_SECONDS = 0.2
    generation = _launching(stage="scoring")
    with services.round_keep_alive(generation.id):
        time.sleep(1.0)  # scoring a chunk: no progress write meanwhile
        generation.refresh_from_db()
    assert generation.progress["worker"] == worker_identity()
    beat = datetime.fromisoformat(generation.progress["heartbeat_at"])
    assert timezone.now() - beat < timedelta(seconds=1)
    assert generation.progress["stage"] == "scoring"  # the rest of the progress is kept


def test_a_round_that_left_launching_is_not_beaten_for():
    generation = _launching(stage="scoring")
    Generation.objects.filter(id=generation.id).update(state="cancelled")
    assert services.round_beat(generation_id=generation.id) is False
    generation.refresh_from_db()
    assert "heartbeat_at" not in generation.progress


def test_pipeline_alive_by_heartbeat_age_and_process(settings):
    settings.STEPWISE_TRAINING_STALE_SECONDS = 60
    now = timezone.now()
    far = _launching(worker="gpu-box:7", heartbeat_at=now.isoformat())
    assert services.round_pipeline_alive(far)
    assert not services.round_pipeline_alive(far, now=now + timedelta(seconds=61))
    # This process holds no step now: a beat it left behind is from a step that ended.
    here = Generation(progress={"worker": worker_identity(), "heartbeat_at": now.isoformat()})
    assert not services.round_pipeline_alive(here)
    assert not services.round_pipeline_alive(Generation(progress={"stage": "queued"}))
