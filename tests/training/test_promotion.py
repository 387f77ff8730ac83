"""Promotion rule, retirement, stale-run sweep, retrain trigger and beat entries."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from tests.training import factories as f
from training import services
from training.models import PRMVersion, TrainingRun
from training.selectors import active_prm_version
from training.services import execute

pytestmark = pytest.mark.django_db


# A held-out set big enough for promotion (test_promotion_heldout.py tests the minimum).
HELDOUT = {"heldout_solutions": 80, "n_steps": 600}


def _version(name, state=PRMVersion.State.READY, kind="prm", **metrics) -> PRMVersion:
    return PRMVersion.objects.create(
        name=name,
        kind=kind,
        base_model="/models/tiny",
        state=state,
        checkpoint_path=f"/ckpt/{name}",
        metrics={**HELDOUT, **metrics},
        data_snapshot={"max_labeling_id": 0},
    )


def test_first_ready_version_becomes_active():
    v1 = _version("v1", step_auroc=0.7)
    services.prm_version_promote(prm_version_id=v1.id)
    assert active_prm_version() == v1
    v1.refresh_from_db()
    assert v1.state == "active" and v1.activated_at is not None


def test_better_version_replaces_active_which_is_retired():
    old = _version("old", state="active", step_auroc=0.80)
    new = _version("new", step_auroc=0.85)
    services.prm_version_promote(prm_version_id=new.id)
    old.refresh_from_db()
    new.refresh_from_db()
    assert (old.state, new.state) == ("retired", "active")
    assert old.retired_at is not None
    assert "step_auroc 0.8500 >= 0.8000" in new.metrics["promotion"]["reason"]


def test_regressing_version_stays_ready():
    old = _version("old", state="active", step_auroc=0.80)
    new = _version("new", step_auroc=0.79)
    with pytest.raises(services.PromotionRefused, match="would regress"):
        services.prm_version_promote(prm_version_id=new.id)
    old.refresh_from_db()
    new.refresh_from_db()
    assert (old.state, new.state) == ("active", "ready")


def test_rule_is_configurable(settings):
    settings.STEPWISE_PROMOTION_RULE = {"prm": {"metric": "step_accuracy", "tolerance": 0.02}}
    _version("old", state="active", step_accuracy=0.90, step_auroc=0.99)
    new = _version("new", step_accuracy=0.885, step_auroc=0.5)  # within tolerance
    services.prm_version_promote(prm_version_id=new.id)
    assert active_prm_version() == new


def test_baseline_scored_on_the_same_heldout_set_wins_over_stored_metrics():
    old = _version("old", state="active", step_auroc=0.95)  # measured on an easier, older split
    new = _version("new", step_auroc=0.90)
    new.metrics["baseline"] = {"prm_version_id": old.id, "step_auroc": 0.88}
    new.save()
    services.prm_version_promote(prm_version_id=new.id)
    assert active_prm_version() == new


def test_missing_metric_refuses_unless_forced():
    _version("old", state="active", step_auroc=0.8)
    new = _version("new")
    with pytest.raises(services.PromotionRefused, match="no held-out step_auroc"):
        services.prm_version_promote(prm_version_id=new.id)
    services.prm_version_promote(prm_version_id=new.id, force=True)
    assert active_prm_version() == new


def test_kinds_are_promoted_independently_and_failed_versions_never():
    prm = _version("prm", state="active", step_auroc=0.8)
    orm = _version("orm", kind="orm", solution_auroc=0.6)
    services.prm_version_promote(prm_version_id=orm.id)
    assert active_prm_version("orm") == orm and active_prm_version("prm") == prm
    broken = PRMVersion.objects.create(name="broken", base_model="/m", state="failed")
    with pytest.raises(services.PromotionRefused, match="is failed"):
        services.prm_version_promote(prm_version_id=broken.id)


def test_database_allows_one_active_version_per_kind():
    _version("a", state="active")
    with pytest.raises(IntegrityError), transaction.atomic():
        _version("b", state="active")


def test_version_cannot_be_ready_without_checkpoint():
    with pytest.raises(IntegrityError), transaction.atomic():
        PRMVersion.objects.create(name="x", base_model="/m", state="ready", checkpoint_path="")


def test_retire():
    v = _version("v", state="active")
    services.prm_version_retire(prm_version_id=v.id)
    v.refresh_from_db()
    assert v.state == "retired" and active_prm_version() is None


def test_create_validates_fields(tmp_path):
    with pytest.raises(ValidationError) as caught:
        services.prm_version_create(
            name="", base_model=str(tmp_path / "missing"), kind="xyz", hyperparameters={"lr": 1}
        )
    assert set(caught.value.message_dict) == {"name", "base_model", "kind", "hyperparameters"}
    assert PRMVersion.objects.count() == 0


def test_create_freezes_the_data_snapshot(tmp_path):
    made = f.labeling(f.solution(f.problem(), ["a", "b"]), [1, 1])
    v = services.prm_version_create(name="v", base_model=str(tmp_path))
    assert v.state == "training"
    assert v.data_snapshot == {"max_labeling_id": made.id, "heldout_fraction": 0.1}
    orm = services.prm_version_create(name="o", base_model=str(tmp_path), kind="orm")
    assert orm.data_snapshot["max_solution_id"] == made.solution_id


def test_second_training_of_a_version_is_refused(tmp_path):
    v = services.prm_version_create(name="v", base_model=str(tmp_path))
    services.training_run_start(prm_version_id=v.id, enqueue=False)
    with pytest.raises(services.TrainingError, match="already being trained"):
        services.training_run_start(prm_version_id=v.id, enqueue=False)
    assert TrainingRun.objects.filter(prm_version=v).count() == 1


def test_claim_skips_finished_and_live_runs_and_retries_lost_ones(tmp_path, settings):
    settings.STEPWISE_TRAINING_MAX_ATTEMPTS = 2
    v = services.prm_version_create(name="v", base_model=str(tmp_path))
    run = services.training_run_start(prm_version_id=v.id, enqueue=False)

    claimed = services.training_run_claim(run_id=run.id)
    assert claimed.state == "running" and claimed.attempts == 1
    # The same process asking again means its earlier attempt ended without finishing.
    again = services.training_run_claim(run_id=run.id)
    assert again.attempts == 2 and "attempt 1 lost" in again.log
    # A live process elsewhere on this machine holds it: a duplicate delivery is ignored.
    TrainingRun.objects.filter(id=run.id).update(worker=f"{socket.gethostname()}:1")
    assert services.training_run_claim(run_id=run.id) is None
    # Out of attempts: the next lost attempt fails the run and the version.
    TrainingRun.objects.filter(id=run.id).update(worker="elsewhere:1", heartbeat_at=None)
    assert services.training_run_claim(run_id=run.id) is None
    run.refresh_from_db()
    v.refresh_from_db()
    assert run.state == "failed" and "no attempts left" in run.error
    assert v.state == "failed"
    assert services.training_run_claim(run_id=run.id) is None  # finished: nothing to do


def test_sweep_retries_silent_runs_then_fails_them(tmp_path, settings):
    settings.STEPWISE_TRAINING_MAX_ATTEMPTS = 2
    v = services.prm_version_create(name="v", base_model=str(tmp_path))
    run = services.training_run_start(prm_version_id=v.id, enqueue=False)
    TrainingRun.objects.filter(id=run.id).update(
        state="running", attempts=1, worker="gpu-box:4242", heartbeat_at=timezone.now()
    )
    assert services.training_runs_sweep_stale() == {"retried": 0, "failed": 0}
    # Silent longer than STEPWISE_TRAINING_STALE_SECONDS: attempt 1 is lost, the run is queued
    # again for attempt 2.
    silent = timezone.now() - timedelta(seconds=settings.STEPWISE_TRAINING_STALE_SECONDS + 1)
    TrainingRun.objects.filter(id=run.id).update(heartbeat_at=silent)
    assert services.training_runs_sweep_stale() == {"retried": 1, "failed": 0}
    run.refresh_from_db()
    assert run.state == "queued" and "attempt 1 lost" in run.log and run.worker == ""
    # Attempt 2 goes silent too: no attempts left, the run and its version fail.
    TrainingRun.objects.filter(id=run.id).update(
        state="running", attempts=2, worker="gpu-box:4243", heartbeat_at=silent
    )
    assert services.training_runs_sweep_stale() == {"retried": 0, "failed": 1}
    run.refresh_from_db()
    v.refresh_from_db()
    assert run.state == "failed" and v.state == "failed"


def test_retrain_waits_for_enough_new_labels(tmp_path, settings):
    settings.STEPWISE_RETRAIN_MIN_NEW_LABELS = 3
    sol = f.solution(f.problem(), ["a", "b"])
    first = f.labeling(sol, [1, 1])
    active = _version("active", state="active", step_auroc=0.8)
    active.base_model = str(tmp_path)
    active.data_snapshot = {"max_labeling_id": first.id}
    active.hyperparameters = {"epochs": 3}
    active.save()
    for _ in range(2):
        f.labeling(sol, [1, -1])
    assert services.retrain_if_needed() is None
    f.labeling(sol, [1, 0])

    version = services.retrain_if_needed()

    assert version is not None and version.state == "training"
    assert version.hyperparameters == {"epochs": 3} and version.base_model == str(tmp_path)
    run = version.runs.get()
    assert run.kind == "train" and run.params == {"activate": True}
    # A version is in training now: the next check does not pile up another one.
    assert services.retrain_if_needed(force=True) is None


def test_scheduled_retrain_needs_at_least_one_new_label(tmp_path, settings):
    from training.tasks import retrain_scheduled_task

    settings.STEPWISE_RETRAIN_MIN_NEW_LABELS = 1000
    first = f.labeling(f.solution(f.problem(), ["a", "b"]), [1, 1])
    active = _version("active", state="active", step_auroc=0.8)
    active.base_model = str(tmp_path)
    active.data_snapshot = {"max_labeling_id": first.id}
    active.save()
    assert retrain_scheduled_task() is None  # nothing new since the active version
    f.labeling(f.solution(f.problem(), ["a"]), [1])
    made = PRMVersion.objects.get(id=retrain_scheduled_task())  # run in-process: a plain call
    assert made.state == "training" and made.runs.get().params == {"activate": True}


def test_beat_entries_follow_settings(settings):
    from django_celery_beat.models import PeriodicTask

    from training import schedule

    settings.STEPWISE_RETRAIN_SCHEDULE_ENABLED = False
    settings.STEPWISE_RETRAIN_MIN_NEW_LABELS = 500
    schedule.sync_periodic_tasks()
    tasks = {t.name: t for t in PeriodicTask.objects.filter(name__startswith="training:")}
    assert tasks[schedule.SCHEDULED].enabled is False
    assert tasks[schedule.NEW_LABELS].enabled is True
    assert tasks[schedule.SWEEP].task == "stepwise.training.sweep_stale_runs"

    settings.STEPWISE_RETRAIN_SCHEDULE_ENABLED = True
    settings.STEPWISE_RETRAIN_INTERVAL_HOURS = 6
    schedule.sync_periodic_tasks()
    scheduled = PeriodicTask.objects.get(name=schedule.SCHEDULED)
    assert scheduled.enabled is True and scheduled.interval.every == 6
    assert PeriodicTask.objects.filter(name__startswith="training:").count() == 3


@pytest.mark.parametrize("outcome", ["raises", "returns"])
def test_superseded_attempt_writes_nothing(outcome, monkeypatch):
    version = _version("v")
    run = services.scoring_run_start(prm_version_id=version.id, enqueue=False)

    def taken_over_meanwhile(**_kwargs):
        # Another worker took the run over (e.g. this one was silent past the stale limit).
        TrainingRun.objects.filter(id=run.id).update(attempts=F("attempts") + 1, worker="b:1")
        if outcome == "raises":
            raise RuntimeError("lost my files to the new attempt")
        return 7

    monkeypatch.setattr(execute, "score_solutions", taken_over_meanwhile)
    assert services.training_run_execute(run_id=run.id) is None
    run.refresh_from_db()
    # Neither failed nor succeeded by the old attempt: the new one owns the outcome.
    assert (run.state, run.attempts, run.worker) == ("running", 2, "b:1")
    assert "result" not in run.params and run.error == ""


def test_train_prm_version_refuses_other_kinds_of_run():
    version = _version("v")
    run = services.scoring_run_start(prm_version_id=version.id, enqueue=False)
    with pytest.raises(services.TrainingError, match="is not a training run"):
        services.train_prm_version(run_id=run.id)
    assert TrainingRun.objects.get(id=run.id).state == "queued"
