"""Starting runs while the broker is down (issue 14): the API answers as usual with the run stored
as queued, the log says the broker was unreachable, and the beat sweep sends the run once Redis
is back, where a real worker runs it.

The web (gunicorn), the worker and the sweep are separate processes of this project on the test
database, with a redis-server of the test's own as broker that the test kills with SIGKILL.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token

from config.jobs import RunRows
from labeling.models import Problem, Solution
from tests.active_learning import factories as f
from tests.conftest import _test_database_url
from tests.faults import CeleryWorker, RedisServer, WebServer, django_process
from tests.generator.conftest import ScriptedServer
from tests.training.conftest import TINY_HYPERPARAMETERS
from training import services
from training.models import PRMVersion, SamplingRun, TrainingRun

pytestmark = pytest.mark.django_db(transaction=True)

SWEEP = "from training.tasks import sweep_stale_runs_task; print('sweep', sweep_stale_runs_task())"


def _reply(problem: str, seed: int, index: int, body: dict) -> str:
    return f"We look at the problem.\nIt gives {index + 2}.\n\n# Answer\n\n{index + 2}"


@pytest.fixture
def scripted():
    with ScriptedServer(_reply) as server:
        yield server


def _env(redis: RedisServer, scripted: ScriptedServer, artifacts) -> dict[str, str]:
    generator = {
        "backend": "openai",
        "base_url": scripted.base_url,
        "model": "scripted",
        "endpoint": "completions",
        "max_retries": 0,
    }
    return {
        "DATABASE_URL": _test_database_url(),
        "CELERY_BROKER_URL": redis.url,
        "CELERY_RESULT_BACKEND": redis.url,
        "CACHE_URL": redis.url,
        "STEPWISE_GENERATORS": json.dumps({"scripted": generator}),
        "STEPWISE_GENERATOR_DEFAULT": "scripted",
        "STEPWISE_ARTIFACT_DIR": str(artifacts),
    }


def _wait(model, run_id: int, timeout: float = 240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = model.objects.get(id=run_id)
        if run.state in ("succeeded", "failed"):
            return run
        time.sleep(0.5)
    raise AssertionError(f"{model.__name__} {run_id} still {run.state}:\n{run.log}")


def _sweep(env: dict[str, str], grace: int) -> str:
    out = django_process({**env, "STEPWISE_JOB_PUBLISH_GRACE_SECONDS": str(grace)}, SWEEP)
    assert out.wait(timeout=90) == 0, out.stdout.read()
    return out.stdout.read()


@pytest.mark.celery_worker
def test_runs_started_while_the_broker_is_down_are_queued_then_sent_by_the_sweep(
    tmp_path, tiny_backbone, synthetic_labelings, scripted
):
    admin = f.person("admin")
    token, _ = Token.objects.get_or_create(user=admin.user)
    headers = {"Authorization": f"Token {token.key}", "Content-Type": "application/json"}
    problem_ids = list(Problem.objects.order_by("id").values_list("id", flat=True)[:2])
    redis = RedisServer(tmp_path / "redis").start()
    env = _env(redis, scripted, tmp_path / "artifacts")
    web = WebServer(env=env, directory=tmp_path / "web").start()
    worker = CeleryWorker(env=env, directory=tmp_path / "worker")
    try:
        redis.kill()  # the broker is down when the admin starts the runs
        started = time.monotonic()
        status, body = web.request(
            "POST",
            "/api/training/versions/",
            body=json.dumps(
                {"name": "outage-prm", "base_model": tiny_backbone, **TINY_HYPERPARAMETERS}
            ).encode(),
            headers=headers,
        )
        assert status == 201, body
        training = json.loads(body)["run"]
        assert training["state"] == "queued"
        status, body = web.request(
            "POST",
            "/api/training/sampling-runs/",
            body=json.dumps({"samples": 2, "problem_ids": problem_ids}).encode(),
            headers=headers,
        )
        assert status == 201, body
        sampling = json.loads(body)
        assert sampling["state"] == "queued"
        assert time.monotonic() - started < 30  # the requests did not hang on the broker

        # Stored whole and queued, not sent: no task id, and the run's log says why.
        assert PRMVersion.objects.get().state == "training"
        train_run = TrainingRun.objects.get()
        sample_run = SamplingRun.objects.get()
        assert (train_run.id, sample_run.id) == (training["id"], sampling["id"])
        for run in (train_run, sample_run):
            assert run.state == "queued" and run.celery_task_id == "" and run.attempts == 0
            assert "the broker is unreachable" in run.log
        web_log = web.log_path.read_text()
        assert f"run {train_run.id}: could not send its task, the broker is unreachable" in web_log
        assert f"sampling run {sample_run.id}: could not send its task" in web_log
        assert "the job sweep will send it once the broker is back" in web_log

        # A sweep while Redis is still down sends nothing and fails nothing.
        assert "'published': 0, 'retried': 0, 'failed': 0" in _sweep(env, grace=0)

        redis.start()  # back, and empty: the messages never reached it
        worker.start()
        # Runs younger than the grace may still be in their first publish: left alone.
        assert "'published': 0" in _sweep(env, grace=3600)
        # Beat's sweep (every minute) sends the older ones.
        assert "'published': 2" in _sweep(env, grace=0)

        train_run = _wait(TrainingRun, train_run.id)
        sample_run = _wait(SamplingRun, sample_run.id)
        for run in (train_run, sample_run):
            assert run.state == "succeeded", run.log
            assert run.attempts == 1 and run.celery_task_id
            assert "sent by the sweep: its task had not reached the broker" in run.log
        assert PRMVersion.objects.get().state in ("ready", "active")
        assert sample_run.counts["requested"] == 4
        # Sent once: a later sweep finds nothing to send.
        assert "'published': 0" in _sweep(env, grace=0)

        # The web process sends at once again now that Redis is back (its broken connection to
        # the old Redis is replaced): a scoring run needs no sweep.
        version_id = PRMVersion.objects.get().id
        solution_ids = list(Solution.objects.order_by("id").values_list("id", flat=True)[:2])
        status, body = web.request(
            "POST",
            f"/api/training/versions/{version_id}/score/",
            body=json.dumps({"solution_ids": solution_ids}).encode(),
            headers=headers,
        )
        assert status == 202, body
        score_run = _wait(TrainingRun, json.loads(body)["id"])
        assert score_run.state == "succeeded", score_run.log
        assert score_run.celery_task_id and "sweep" not in score_run.log
    finally:
        worker.stop()
        web.stop()
        redis.kill()


def test_publish_answers_none_with_a_warning_when_the_broker_is_killed(tmp_path):
    """The shared publish helper against a real, killed redis-server: no exception, quickly."""
    redis = RedisServer(tmp_path / "redis").start()
    env = {"CELERY_BROKER_URL": redis.url, "CELERY_RESULT_BACKEND": redis.url}
    code = (
        "import time; from config.celery import ping; from config.publish import publish\n"
        "start = time.monotonic()\n"
        "print('sent', publish(ping, kwargs={}, subject='ping 1'))\n"
        "print('took', round(time.monotonic() - start, 1))\n"
    )
    try:
        out = django_process(env, code)
        assert out.wait(timeout=60) == 0
        alive = out.stdout.read()
        assert "sent None" not in alive and "could not send" not in alive, alive
        redis.kill()
        out = django_process(env, code)
        assert out.wait(timeout=60) == 0
        dead = out.stdout.read()
        assert "sent None" in dead, dead
        assert "ping 1: could not send its task, the broker is unreachable" in dead
        assert float(dead.split("took ")[1].split()[0]) < 15, dead
    finally:
        redis.kill()


# ---------------------------------------------------------------- the sweep's rules, in-process


def _queued_run(version: PRMVersion, *, age_s: float, task_id: str = "") -> TrainingRun:
    run = TrainingRun.objects.create(
        prm_version=version, kind=TrainingRun.Kind.EVALUATE, celery_task_id=task_id
    )
    TrainingRun.objects.filter(id=run.id).update(
        created_at=timezone.now() - timedelta(seconds=age_s)
    )
    return run


def test_the_sweep_sends_only_old_enough_queued_runs_without_a_task_id(settings):
    settings.STEPWISE_JOB_PUBLISH_GRACE_SECONDS = 30
    version = PRMVersion.objects.create(name="rules", base_model="none")
    old = _queued_run(version, age_s=120)
    young = _queued_run(version, age_s=5)
    sent_already = _queued_run(version, age_s=120, task_id="abc")
    running = _queued_run(version, age_s=120)
    TrainingRun.objects.filter(id=running.id).update(state=TrainingRun.State.RUNNING)
    sent: list[int] = []

    def enqueue(row) -> bool:
        sent.append(row.id)
        TrainingRun.objects.filter(id=row.id).update(celery_task_id=f"task-{row.id}")
        return True

    rows = RunRows(TrainingRun, label="run", enqueue=enqueue)
    assert rows.publish_unpublished() == 1
    assert sent == [old.id]
    assert "sent by the sweep" in TrainingRun.objects.get(id=old.id).log
    # Idempotent: sent once, not again; the young one waits for its grace.
    assert rows.publish_unpublished() == 0
    later = timezone.now() + timedelta(seconds=60)
    assert rows.publish_unpublished(now=later) == 1
    assert sent == [old.id, young.id]
    assert TrainingRun.objects.get(id=sent_already.id).celery_task_id == "abc"


def test_while_the_broker_is_down_the_sweep_stops_at_the_first_refusal(settings):
    settings.STEPWISE_JOB_PUBLISH_GRACE_SECONDS = 0
    version = PRMVersion.objects.create(name="down", base_model="none")
    first = _queued_run(version, age_s=60)
    _queued_run(version, age_s=60)
    tried: list[int] = []

    def enqueue(row) -> bool:
        tried.append(row.id)
        return False

    rows = RunRows(TrainingRun, label="run", enqueue=enqueue)
    assert rows.publish_unpublished() == 0
    assert tried == [first.id]  # not one broker timeout per run
    assert "sent by the sweep" not in TrainingRun.objects.get(id=first.id).log


def test_a_run_the_stale_sweep_queues_again_loses_its_old_task_id(settings):
    settings.STEPWISE_JOB_PUBLISH_GRACE_SECONDS = 0
    version = PRMVersion.objects.create(name="lost", base_model="none")
    run = _queued_run(version, age_s=600, task_id="old-task")
    TrainingRun.objects.filter(id=run.id).update(
        state=TrainingRun.State.RUNNING,
        worker="elsewhere:4242",
        attempts=1,
        heartbeat_at=timezone.now() - timedelta(hours=1),
    )
    refused: list[int] = []

    def enqueue(row) -> bool:  # the broker is down while the stale sweep re-sends it
        refused.append(row.id)
        return False

    rows = RunRows(TrainingRun, label="run", enqueue=enqueue)
    assert rows.sweep() == {"retried": 1, "failed": 0}
    run.refresh_from_db()
    assert run.state == "queued" and run.celery_task_id == ""
    # So the next sweep finds it among the unpublished ones.
    assert rows.publish_unpublished() == 0 and refused == [run.id, run.id]


def test_the_run_sweep_is_on_beats_schedule():
    from django_celery_beat.models import PeriodicTask

    entry = PeriodicTask.objects.get(task="stepwise.training.sweep_stale_runs")
    assert entry.enabled and entry.interval.every == 1 and entry.interval.period == "minutes"
    assert services.training_runs_publish_unpublished() == 0
