"""Two admins launching at the same moment: one round launches, the other is told to wait."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from active_learning import services
from config.celery import app
from labeling.models import Generation
from tests.active_learning import factories as f

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_launches_make_exactly_one_round():
    admins = [f.person("admin"), f.person("admin")]
    prob = f.problem()
    for _ in range(4):
        f.solution(prob, grade="wrong")
    barrier = threading.Barrier(len(admins))
    outcomes: list[str] = []

    def launch(admin) -> None:
        try:
            barrier.wait(timeout=10)
            services.round_launch(launched_by=admin.user, strategy="uniform", size=2)
            outcomes.append("launched")
        except services.RoundConflict:
            outcomes.append("conflict")
        finally:
            connection.close()

    threads = [threading.Thread(target=launch, args=(a,)) for a in admins]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    try:
        assert sorted(outcomes) == ["conflict", "launched"]
        assert list(Generation.objects.values_list("number", "state")) == [(0, "launching")]
    finally:
        # The launch enqueued its pipeline. A session-wide worker started by an earlier test may
        # be running: cancel the round (each pipeline step then stops), drop what is queued, and
        # wait until no task is active, so teardown's flush never races a pipeline step.
        for generation in Generation.objects.filter(state="launching"):
            services.round_cancel(generation_id=generation.id)
        app.control.purge()
        _wait_for_idle_workers()


def _wait_for_idle_workers(timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        active = app.control.inspect(timeout=1.0).active() or {}
        if not any(active.values()):
            return
        time.sleep(0.5)
    raise AssertionError(f"workers still busy after {timeout} s: {active}")
