"""A round's launch across a broker outage (issue 14, item 2). Each test runs its own
redis-server as the broker and kills it; web, worker and sweep are separate processes of this
project on the test database, as in production."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.authtoken.models import Token

from active_learning import launch_sweep
from labeling.models import Generation
from tests.active_learning import factories as f
from tests.conftest import _test_database_url
from tests.faults import CeleryWorker, RedisServer, WebServer, django_process

pytestmark = pytest.mark.django_db(transaction=True)


def _pool(n: int = 4) -> None:
    prob = f.problem()
    for i in range(n):
        f.solution(prob, grade="wrong" if i % 2 else "correct")


def _env(redis: RedisServer) -> dict[str, str]:
    return {
        "DATABASE_URL": _test_database_url(),
        "CELERY_BROKER_URL": redis.url,
        "CELERY_RESULT_BACKEND": redis.url,
        "CACHE_URL": redis.url,
    }


def _wait_state(generation_id: int, states: set[str], timeout: float = 90) -> Generation:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        generation = Generation.objects.get(id=generation_id)
        if generation.state in states:
            return generation
        time.sleep(0.3)
    raise AssertionError(f"round still {generation.state}: {generation.progress}")


@pytest.mark.celery_worker
def test_a_launch_whose_message_was_lost_is_sent_again_by_the_sweep(tmp_path):
    _pool()
    admin = f.person("admin")
    token, _ = Token.objects.get_or_create(user=admin.user)
    redis = RedisServer(tmp_path / "redis").start()
    web = WebServer(env=_env(redis), directory=tmp_path / "web").start()
    worker = CeleryWorker(env=_env(redis), directory=tmp_path / "worker")
    try:
        redis.kill()  # the broker is down when the admin launches
        status, body = web.request(
            "POST",
            "/api/rounds/",
            body=json.dumps({"strategy": "uniform", "size": 2}).encode(),
            headers={"Authorization": f"Token {token.key}", "Content-Type": "application/json"},
        )
        assert status == 201, body
        generation_id = json.loads(body)["id"]
        assert Generation.objects.get(id=generation_id).state == "launching"
        assert "could not send its select step" in web.log_path.read_text()

        # Redis comes back empty (the message never reached it); a worker is up.
        redis.start()
        worker.start()
        # While the round is young the sweep leaves it (its message may still be on its way).
        sweep = "from active_learning.tasks import finish_rounds; finish_rounds()"
        assert django_process(_env(redis), sweep).wait(timeout=60) == 0
        time.sleep(2)
        assert Generation.objects.get(id=generation_id).state == "launching"
        # Once nothing moved for STEPWISE_ROUND_REDRIVE_SECONDS, beat's sweep sends it again.
        env = {**_env(redis), "STEPWISE_ROUND_REDRIVE_SECONDS": "0"}
        out = django_process(env, sweep)
        assert out.wait(timeout=60) == 0, out.stdout.read()
        generation = _wait_state(generation_id, {"active", "failed"})
        assert generation.state == "active", generation.progress
        assert generation.progress["selected"] == 2
        assert generation.progress["redrives"] == 1
        assert generation.tasks.count() == 2
    finally:
        worker.stop()
        web.stop()
        redis.kill()


@pytest.mark.celery_worker
def test_a_worker_sending_the_next_step_waits_out_a_broker_restart(tmp_path):
    """Scoring done, the worker sends the selection while Redis is down: it retries with
    back-off until Redis is back (a bounded time), instead of giving up within a second."""
    _pool()
    generation = Generation.objects.create(
        number=7,
        strategy="uniform",
        strategy_params={"seed": 7},
        state=Generation.State.LAUNCHING,
        target_size=2,
        progress={"stage": "scoring", "scored": True},
    )
    redis = RedisServer(tmp_path / "redis").start()
    worker = CeleryWorker(env=_env(redis), directory=tmp_path / "worker")
    try:
        redis.kill()
        started = time.monotonic()
        sender = django_process(
            _env(redis),
            "from active_learning.tasks import send_step\n"
            f"print('sent', send_step({generation.id}, 'select', patient=True))",
        )
        time.sleep(5)
        assert sender.poll() is None  # still trying
        redis.start()
        assert sender.wait(timeout=120) == 0
        output = sender.stdout.read()
        assert "sent True" in output, output
        assert time.monotonic() - started >= 5
        worker.start()
        assert _wait_state(generation.id, {"active", "failed"}).state == "active"
    finally:
        worker.stop()
        redis.kill()


# ---------------------------------------------------------------- the sweep's rules, in-process


def _launching(number: int, **progress) -> Generation:
    generation = Generation.objects.create(
        number=number,
        strategy="uniform",
        strategy_params={"seed": number},
        state=Generation.State.LAUNCHING,
        target_size=2,
        progress={"stage": "queued", **progress},
    )
    return generation


@override_settings(STEPWISE_ROUND_REDRIVE_SECONDS=120, STEPWISE_ROUND_STALL_SECONDS=1800)
def test_sweep_resends_once_per_interval_then_fails_the_round_with_its_reason():
    now = timezone.now()
    gone = "elsewhere:4242"
    generation = _launching(3, worker=gone, heartbeat_at=(now - timedelta(seconds=300)).isoformat())
    sent: list[tuple[int, str]] = []

    def send(generation_id: int, step: str) -> bool:
        sent.append((generation_id, step))
        return True

    assert launch_sweep.rounds_sweep_stalled(send=send, now=now) == {"resent": 1, "failed": 0}
    assert sent == [(generation.id, "select")]
    generation.refresh_from_db()
    assert generation.progress["redrives"] == 1
    assert "sent again" in generation.progress["message"]
    assert generation.progress["heartbeat_at"] == (now - timedelta(seconds=300)).isoformat()
    # A minute later: not again yet.
    later = now + timedelta(seconds=60)
    assert launch_sweep.rounds_sweep_stalled(send=send, now=later) == {"resent": 0, "failed": 0}
    # Half an hour without a worker: failed, and the console can say why.
    much_later = now + timedelta(seconds=1800)
    assert launch_sweep.rounds_sweep_stalled(send=send, now=much_later)["failed"] == 1
    generation.refresh_from_db()
    assert generation.state == "failed"
    assert generation.progress["stage"] == "failed"
    assert "no worker ran its select step" in generation.progress["error"]
    assert gone in generation.progress["error"]


@override_settings(STEPWISE_ROUND_REDRIVE_SECONDS=0, STEPWISE_ROUND_STALL_SECONDS=0)
def test_sweep_leaves_a_round_whose_step_has_a_live_worker():
    now = timezone.now()
    busy = _launching(4, worker="another-host:99", heartbeat_at=now.isoformat())
    sent: list = []
    counts = launch_sweep.rounds_sweep_stalled(send=lambda *a: sent.append(a), now=now)
    assert counts == {"resent": 0, "failed": 0} and sent == []
    busy.refresh_from_db()
    assert busy.state == "launching"


def test_next_step_is_scoring_until_scored_then_selection():
    generation = Generation(state=Generation.State.LAUNCHING, retrain=True, progress={})
    assert launch_sweep.round_next_step(generation) == "score"
    generation.progress = {"scored": True}
    assert launch_sweep.round_next_step(generation) == "select"
    generation.state = Generation.State.ACTIVE
    assert launch_sweep.round_next_step(generation) is None
