"""Writes for the training app: versions, runs, training, evaluation, scoring, promotion.

Short writes are `@transaction.atomic`. Long jobs (train, evaluate, score) are not one
transaction: they claim their run row, work for minutes or hours while reporting progress and a
heartbeat in small transactions, and finish in one last transaction. See docs/training.md for
how a lost worker is detected and why a half-written checkpoint can never become active.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import socket
import time
import traceback
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Max, Q
from django.utils import timezone
from django.utils.text import slugify

from labeling.models import Solution, Step
from training import datasets
from training.models import BaseModel, PRMVersion, SolutionScore, TrainingRun
from training.selectors import active_prm_version, labelings_since

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
LOG_LIMIT = 100_000  # characters of run log kept (the tail)
HEARTBEAT_EVERY_S = 2.0
SCORE_BATCH = 128

# Hyperparameters a version may carry into TrainConfig.
TRAIN_KEYS = (
    "epochs",
    "learning_rate",
    "batch_tokens",
    "max_length",
    "seed",
    "bf16",
    "gradient_checkpointing",
    "device",
    "resume_every_steps",
    "backbone_layers",
    "train_layers",
    "frozen_cache_gb",
    "frozen_bf16",
)


class TrainingError(Exception):
    """A domain error: shown to the admin as it is (400 in the API)."""


class PromotionRefused(TrainingError):
    pass


class AttemptSuperseded(Exception):
    """The run was taken over (or failed by the sweep) while this attempt still ran.

    The attempt stops without writing anything: another attempt owns the run now.
    """


# --------------------------------------------------------------------------- base models


def _backbone_problem(path: str) -> str | None:
    """Why `path` cannot be a reward model's backbone, or None when it can (see backbones.py)."""
    from training.prm.backbones import BackboneError, check_backbone

    try:
        check_backbone(path)
    except BackboneError as exc:
        return str(exc)
    return None


def base_model_register(
    *, name: str, path: str, kind: str = BaseModel.Kind.CAUSAL_LM, notes: str | None = None
) -> BaseModel:
    """Register a local backbone under `name` after checking it (causal LM with weights).

    The parameter count is read from the config (built on the meta device, no weights loaded).
    Registering a name again updates its path and count: `load_demo` and the set-up call this on
    every run.
    """
    from training.prm.backbones import BackboneError, check_backbone

    errors: dict[str, list[str]] = {}
    if not name or len(name) > 128:
        errors["name"] = ["Give a name of 1 to 128 characters."]
    if kind not in BaseModel.Kind.values:
        errors["kind"] = [f"Kind must be one of {', '.join(BaseModel.Kind.values)}."]
    info = None
    try:
        info = check_backbone(path)
    except BackboneError as exc:
        errors["path"] = [str(exc)]
    if errors:
        raise ValidationError(errors)
    fields: dict[str, Any] = {
        "path": info.path,
        "kind": kind,
        "parameter_count": info.parameter_count,
    }
    if notes is not None:
        fields["notes"] = notes
    with transaction.atomic():
        base_model, _ = BaseModel.objects.update_or_create(name=name, defaults=fields)
    return base_model


def base_model_path(name_or_path: str) -> str:
    """A registered base model's directory, or the argument itself when no model has that name."""
    registered = BaseModel.objects.filter(name=name_or_path).values_list("path", flat=True).first()
    return registered or name_or_path


# --------------------------------------------------------------------------- versions


@transaction.atomic
def prm_version_create(
    *,
    name: str,
    base_model: str,
    kind: str = PRMVersion.Kind.PRM,
    hyperparameters: dict[str, Any] | None = None,
    max_labeling_id: int | None = None,
    heldout_fraction: float | None = None,
) -> PRMVersion:
    """A version in state `training`, its data snapshot frozen now (retries train on the same data).

    The snapshot also fixes the held-out share (default STEPWISE_HELDOUT_FRACTION), so later
    evaluations of the version use the same split.
    """
    errors: dict[str, list[str]] = {}
    if not name or len(name) > 128:
        errors["name"] = ["Give a name of 1 to 128 characters."]
    elif PRMVersion.objects.filter(name=name).exists():
        errors["name"] = [f"A version named {name!r} exists already."]
    if kind not in PRMVersion.Kind.values:
        errors["kind"] = [f"Kind must be one of {', '.join(PRMVersion.Kind.values)}."]
    base_model = base_model_path(base_model) if base_model else base_model
    if not base_model or not Path(base_model).is_dir():
        errors["base_model"] = [
            f"{base_model!r} is not a local model directory (nor a registered base model)."
        ]
    elif (Path(base_model) / "config.json").is_file() and (
        problem := _backbone_problem(base_model)
    ):
        errors["base_model"] = [problem]
    hyperparameters = dict(hyperparameters or {})
    unknown = sorted(set(hyperparameters) - set(TRAIN_KEYS))
    if unknown:
        errors["hyperparameters"] = [f"Unknown keys: {', '.join(unknown)}."]
    if heldout_fraction is None:
        heldout_fraction = settings.STEPWISE_HELDOUT_FRACTION
    if not 0.0 <= heldout_fraction < 1.0:
        errors["heldout_fraction"] = ["Give a share in [0, 1)."]
    if errors:
        raise ValidationError(errors)
    if max_labeling_id is None:
        max_labeling_id = datasets.current_max_labeling_id()
    snapshot: dict[str, Any] = {
        "max_labeling_id": max_labeling_id,
        "heldout_fraction": heldout_fraction,
    }
    if kind == PRMVersion.Kind.ORM:
        # Outcome models also learn from graded solutions nobody labeled (up to this id).
        snapshot["max_solution_id"] = Solution.objects.aggregate(m=Max("id"))["m"] or 0
    return PRMVersion.objects.create(
        name=name,
        kind=kind,
        base_model=str(Path(base_model).resolve()),
        hyperparameters=hyperparameters,
        data_snapshot=snapshot,
    )


def _promotion_rule(kind: str) -> dict[str, Any]:
    rules = settings.STEPWISE_PROMOTION_RULE
    rule = rules.get(kind, rules) if isinstance(rules, dict) else {}
    if "metric" not in rule:
        raise ImproperlyConfiguredRule(f"STEPWISE_PROMOTION_RULE has no metric for {kind!r}")
    return {"metric": rule["metric"], "tolerance": float(rule.get("tolerance", 0.0))}


class ImproperlyConfiguredRule(TrainingError):
    pass


def promotion_check(candidate: PRMVersion, active: PRMVersion | None) -> tuple[bool, str]:
    """Does `candidate` pass the rule against `active`? Pure; returns (ok, reason)."""
    if active is None:
        return True, "no active version"
    rule = _promotion_rule(candidate.kind)
    metric, tolerance = rule["metric"], rule["tolerance"]
    new = (candidate.metrics or {}).get(metric)
    if new is None:
        return False, f"candidate has no held-out {metric}"
    # The candidate's training also scored the active version on the same held-out data;
    # prefer that number to the active version's own (measured on an older held-out set).
    baseline = (candidate.metrics or {}).get("baseline") or {}
    if baseline.get("prm_version_id") == active.id and baseline.get(metric) is not None:
        old, where = baseline[metric], "on the candidate's held-out set"
    else:
        old, where = (active.metrics or {}).get(metric), "as stored"
    if old is None:
        return True, f"active version has no {metric}"
    if new + tolerance >= old:
        return True, f"{metric} {new:.4f} >= {old:.4f} - {tolerance} ({where})"
    return False, f"{metric} {new:.4f} < {old:.4f} - {tolerance} ({where}): would regress"


def heldout_size(version: PRMVersion) -> dict[str, int]:
    """How many held-out solutions and rated held-out steps the version's metrics stand on."""
    metrics, snapshot = version.metrics or {}, version.data_snapshot or {}
    solutions = metrics.get("heldout_solutions", snapshot.get("heldout_solutions"))
    steps = metrics.get("n_steps")
    return {"solutions": int(solutions or 0), "steps": int(steps or 0)}


def heldout_size_check(version: PRMVersion) -> tuple[bool, str]:
    """Is the held-out set big enough for its metrics to mean anything? Pure; (ok, reason).

    Thresholds: STEPWISE_PROMOTION_MIN_HELDOUT_SOLUTIONS and, for PRMs (whose metric is per
    step), STEPWISE_PROMOTION_MIN_HELDOUT_STEPS.
    """
    size = heldout_size(version)
    need_solutions = settings.STEPWISE_PROMOTION_MIN_HELDOUT_SOLUTIONS
    need_steps = (
        settings.STEPWISE_PROMOTION_MIN_HELDOUT_STEPS if version.kind == PRMVersion.Kind.PRM else 0
    )
    measured = f"{size['solutions']} held-out solutions and {size['steps']} rated steps"
    if size["solutions"] >= need_solutions and size["steps"] >= need_steps:
        return True, f"measured on {measured}"
    return False, (
        f"its metrics were measured on {measured}, too few to mean anything; promotion needs at "
        f"least {need_solutions} solutions and {need_steps} steps "
        "(STEPWISE_PROMOTION_MIN_HELDOUT_SOLUTIONS / _STEPS)"
    )


@transaction.atomic
def prm_version_promote(*, prm_version_id: int, force: bool = False) -> PRMVersion:
    """Make the version active if its held-out set is big enough and its metrics do not regress;
    the old one is retired. ``force`` overrides both checks (the reasons are recorded).

    Locks every version of the kind, so two promotions run one after the other; the
    one-active-per-kind constraint backs it up.
    """
    candidate = PRMVersion.objects.select_for_update().get(id=prm_version_id)
    list(PRMVersion.objects.select_for_update().filter(kind=candidate.kind).values_list("id"))
    if candidate.state == PRMVersion.State.ACTIVE:
        return candidate
    if candidate.state not in (PRMVersion.State.READY, PRMVersion.State.RETIRED):
        raise PromotionRefused(f"{candidate.name} is {candidate.state}, not ready")
    sized, size_reason = heldout_size_check(candidate)
    if not sized and not force:
        raise PromotionRefused(f"{candidate.name} stays {candidate.state}: {size_reason}")
    active = active_prm_version(candidate.kind)
    ok, reason = promotion_check(candidate, active)
    if not ok and not force:
        raise PromotionRefused(f"{candidate.name} stays {candidate.state}: {reason}")
    if not sized:
        reason = f"{reason}; {size_reason}"
    now = timezone.now()
    if active is not None:
        active.state, active.retired_at = PRMVersion.State.RETIRED, now
        active.save(update_fields=["state", "retired_at"])
    candidate.state, candidate.activated_at = PRMVersion.State.ACTIVE, now
    candidate.metrics = {**candidate.metrics, "promotion": {"reason": reason, "forced": force}}
    candidate.save(update_fields=["state", "activated_at", "metrics"])
    logger.info("promoted %s: %s", candidate.name, reason)
    return candidate


@transaction.atomic
def prm_version_retire(*, prm_version_id: int) -> PRMVersion:
    version = PRMVersion.objects.select_for_update().get(id=prm_version_id)
    if version.state not in (PRMVersion.State.READY, PRMVersion.State.ACTIVE):
        raise TrainingError(f"{version.name} is {version.state}: only ready or active retire")
    version.state, version.retired_at = PRMVersion.State.RETIRED, timezone.now()
    version.save(update_fields=["state", "retired_at"])
    return version


# --------------------------------------------------------------------------- runs


def _enqueue(run: TrainingRun) -> None:
    from training import tasks  # tasks import services

    task = {
        TrainingRun.Kind.TRAIN: tasks.train_prm_version_task,
        TrainingRun.Kind.EVALUATE: tasks.evaluate_prm_version_task,
        TrainingRun.Kind.SCORE: tasks.score_solutions_task,
    }[run.kind]
    result = task.apply_async(kwargs={"run_id": run.id})
    TrainingRun.objects.filter(id=run.id).update(celery_task_id=result.id)


@transaction.atomic
def training_run_start(
    *, prm_version_id: int, activate: bool = False, enqueue: bool = True
) -> TrainingRun:
    """Queue the training of a version; the task is sent once the transaction commits."""
    version = PRMVersion.objects.select_for_update().get(id=prm_version_id)
    if version.state not in (PRMVersion.State.TRAINING, PRMVersion.State.FAILED):
        raise TrainingError(f"{version.name} is {version.state}: train a new version instead")
    if version.state == PRMVersion.State.FAILED:
        version.state = PRMVersion.State.TRAINING
        version.save(update_fields=["state"])
    try:
        with transaction.atomic():
            run = TrainingRun.objects.create(
                prm_version=version, kind=TrainingRun.Kind.TRAIN, params={"activate": activate}
            )
    except IntegrityError as exc:
        raise TrainingError(f"{version.name} is already being trained") from exc
    if enqueue:
        transaction.on_commit(lambda: _enqueue(run))
    return run


def _ready_version(prm_version_id: int) -> PRMVersion:
    version = PRMVersion.objects.get(id=prm_version_id)
    if (
        version.state
        not in (
            PRMVersion.State.READY,
            PRMVersion.State.ACTIVE,
            PRMVersion.State.RETIRED,
        )
        or not version.checkpoint_path
    ):
        raise TrainingError(f"{version.name} is {version.state}: it has no finished checkpoint")
    return version


@transaction.atomic
def evaluation_run_start(
    *, prm_version_id: int, processbench_path: str | None = None, enqueue: bool = True
) -> TrainingRun:
    _ready_version(prm_version_id)
    if processbench_path and not Path(processbench_path).is_file():
        raise ValidationError({"processbench_path": [f"{processbench_path!r} is not a file."]})
    run = TrainingRun.objects.create(
        prm_version_id=prm_version_id,
        kind=TrainingRun.Kind.EVALUATE,
        params={"processbench_path": processbench_path},
    )
    if enqueue:
        transaction.on_commit(lambda: _enqueue(run))
    return run


@transaction.atomic
def scoring_run_start(
    *, prm_version_id: int, solution_ids: list[int] | None = None, enqueue: bool = True
) -> TrainingRun:
    _ready_version(prm_version_id)
    run = TrainingRun.objects.create(
        prm_version_id=prm_version_id,
        kind=TrainingRun.Kind.SCORE,
        params={"solution_ids": solution_ids},
    )
    if enqueue:
        transaction.on_commit(lambda: _enqueue(run))
    return run


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _process_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            # A zombie (Z) or dying (X) process has exited; only its parent has not reaped it yet.
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def _attempt_alive(run: TrainingRun, *, now=None) -> bool:
    """Is the process that claimed this running run still working on it?"""
    now = now or timezone.now()
    stale = timedelta(seconds=settings.STEPWISE_TRAINING_STALE_SECONDS)
    if run.heartbeat_at is None or now - run.heartbeat_at > stale:
        return False
    host, _, pid = run.worker.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        # This process runs one task at a time, so a run it had claimed is not running now.
        return int(pid) != os.getpid() and _process_alive(int(pid))
    return True  # another machine: only the heartbeat can tell


def _append_log(run: TrainingRun, message: str) -> None:
    line = f"{timezone.now():%Y-%m-%d %H:%M:%S} {message}\n"
    run.log = (run.log + line)[-LOG_LIMIT:]


def _fail(run: TrainingRun, error: str) -> None:
    """Mark a run failed (and its version, when a training fails). Call inside a transaction."""
    run.state, run.error, run.finished_at = TrainingRun.State.FAILED, error, timezone.now()
    _append_log(run, f"failed: {error.splitlines()[-1] if error else ''}")
    run.save(update_fields=["state", "error", "finished_at", "log"])
    if run.kind == TrainingRun.Kind.TRAIN:
        PRMVersion.objects.filter(id=run.prm_version_id, state=PRMVersion.State.TRAINING).update(
            state=PRMVersion.State.FAILED
        )
        shutil.rmtree(_resume_dir(run), ignore_errors=True)  # no attempt will continue it


@transaction.atomic
def training_run_claim(*, run_id: int) -> TrainingRun | None:
    """Take the run for this process, or None when there is nothing to do.

    Finished runs are not re-done. A running run whose worker is alive is a duplicate delivery
    and is left alone; one whose worker is gone was lost mid-way and gets another attempt, up to
    STEPWISE_TRAINING_MAX_ATTEMPTS, then fails.
    """
    run = TrainingRun.objects.select_for_update().get(id=run_id)
    if run.state in (TrainingRun.State.SUCCEEDED, TrainingRun.State.FAILED):
        logger.info("run %s is %s already: nothing to do", run.id, run.state)
        return None
    if run.state == TrainingRun.State.RUNNING:
        if _attempt_alive(run):
            logger.info("run %s is running in %s: duplicate delivery ignored", run.id, run.worker)
            return None
        _append_log(run, f"attempt {run.attempts} lost: worker {run.worker} is gone")
        if run.attempts >= settings.STEPWISE_TRAINING_MAX_ATTEMPTS:
            _fail(run, f"worker lost during attempt {run.attempts} (no attempts left)")
            return None
    now = timezone.now()
    run.state, run.worker, run.heartbeat_at = TrainingRun.State.RUNNING, worker_identity(), now
    run.attempts += 1
    run.started_at = run.started_at or now
    run.progress = 0.0
    _append_log(run, f"attempt {run.attempts} started in {run.worker}")
    run.save()
    return run


def _lock_owned(run_id: int, attempt: int) -> TrainingRun:
    """Lock the run and check this process's attempt still owns it. Call inside a transaction.

    This is the fence that keeps a presumed-dead attempt (say, one that was silent too long) from
    overwriting the work of the attempt that replaced it.
    """
    run = TrainingRun.objects.select_for_update().get(id=run_id)
    if (
        run.state != TrainingRun.State.RUNNING
        or run.attempts != attempt
        or run.worker != worker_identity()
    ):
        raise AttemptSuperseded(f"run {run_id} attempt {attempt} is no longer ours ({run.state})")
    return run


class RunReporter:
    """Progress, log lines and heartbeat of a run, written at most every HEARTBEAT_EVERY_S."""

    def __init__(self, run: TrainingRun, echo: Progress | None = None):
        self.run_id = run.id
        self.attempt = run.attempts
        self.echo = echo
        self._last_write = 0.0
        self._pending: list[str] = []
        self._progress = 0.0
        self._message = ""

    def __call__(self, fraction: float, message: str = "", *, force: bool = False) -> None:
        self._progress = min(max(float(fraction), self._progress), 1.0)
        if message and message != self._message:
            self._pending.append(message)
            self._message = message
        if self.echo is not None:
            self.echo(self._progress, message)
        if force or time.monotonic() - self._last_write >= HEARTBEAT_EVERY_S:
            self.flush()

    def scaled(self, start: float, end: float) -> Progress:
        return lambda fraction, message="": self(start + (end - start) * fraction, message)

    def flush(self) -> None:
        with transaction.atomic():
            run = _lock_owned(self.run_id, self.attempt)
            for message in self._pending:
                _append_log(run, message)
            run.progress, run.heartbeat_at = self._progress, timezone.now()
            run.save(update_fields=["progress", "heartbeat_at", "log"])
        self._pending.clear()
        self._last_write = time.monotonic()


def training_run_execute(*, run_id: int, echo: Progress | None = None) -> TrainingRun | None:
    """Do the work of a run (the Celery tasks and the in-process commands call this)."""
    run = training_run_claim(run_id=run_id)
    if run is None:
        return None
    reporter = RunReporter(run, echo)
    try:
        if run.kind == TrainingRun.Kind.TRAIN:
            result = _train(run, reporter)
        elif run.kind == TrainingRun.Kind.EVALUATE:
            result = evaluate_prm_version(
                prm_version_id=run.prm_version_id,
                processbench_path=run.params.get("processbench_path"),
                progress=reporter,
            )
        else:
            count = score_solutions(
                prm_version_id=run.prm_version_id,
                solution_ids=run.params.get("solution_ids"),
                progress=reporter,
            )
            result = {"scored": count}
    except AttemptSuperseded as exc:
        logger.warning("%s: stopping without writing", exc)
        return None
    except Exception as exc:
        if run.kind == TrainingRun.Kind.TRAIN:
            shutil.rmtree(_staging_dir(run), ignore_errors=True)
        error = (
            str(exc) if isinstance(exc, TrainingError) else "".join(traceback.format_exception(exc))
        )
        try:
            reporter.flush()
            with transaction.atomic():
                _fail(_lock_owned(run_id, reporter.attempt), error)
        except AttemptSuperseded:
            logger.warning("run %s: attempt %s failed after losing the run", run_id, run.attempts)
            return None
        raise
    try:
        reporter(1.0, "done", force=True)
        with transaction.atomic():
            run = _lock_owned(run_id, reporter.attempt)
            run.state, run.finished_at, run.progress = (
                TrainingRun.State.SUCCEEDED,
                timezone.now(),
                1.0,
            )
            run.params = {**run.params, "result": json_safe(result)}
            if run.kind == TrainingRun.Kind.TRAIN and run.params.get("activate"):
                # Same transaction: whoever sees the run succeeded also sees the promotion.
                try:
                    with transaction.atomic():
                        prm_version_promote(prm_version_id=run.prm_version_id)
                    _append_log(run, "promoted to active")
                except PromotionRefused as exc:
                    _append_log(run, str(exc))
            run.save(update_fields=["state", "finished_at", "progress", "params", "log"])
    except AttemptSuperseded as exc:
        logger.warning("%s: result dropped", exc)
        return None
    return run


def train_prm_version(*, run_id: int) -> TrainingRun | None:
    """Train a version through its `train` run: build data, train, evaluate, store, ready.

    None when there was nothing to do (finished already, or running elsewhere).
    """
    if TrainingRun.objects.filter(id=run_id).values_list("kind", flat=True).get() != "train":
        raise TrainingError(f"run {run_id} is not a training run")
    return training_run_execute(run_id=run_id)


def training_runs_fail_stale(*, stale_after: timedelta | None = None) -> int:
    """Sweep: running runs whose worker is gone (or silent too long) become failed."""
    stale = stale_after or timedelta(seconds=settings.STEPWISE_TRAINING_STALE_SECONDS)
    now = timezone.now()
    failed = 0
    for run_id in TrainingRun.objects.filter(state=TrainingRun.State.RUNNING).values_list(
        "id", flat=True
    ):
        with transaction.atomic():
            run = TrainingRun.objects.select_for_update().get(id=run_id)
            if run.state != TrainingRun.State.RUNNING:
                continue
            silent = run.heartbeat_at is None or now - run.heartbeat_at > stale
            if silent or not _attempt_alive(run, now=now):
                _fail(run, f"worker {run.worker} lost: no heartbeat since {run.heartbeat_at}")
                failed += 1
    return failed


# --------------------------------------------------------------------------- training


def checkpoint_dir_for(version: PRMVersion) -> Path:
    return Path(settings.STEPWISE_ARTIFACT_DIR) / "prm" / f"{version.id}-{slugify(version.name)}"


def _staging_dir(run: TrainingRun) -> Path:
    return (
        Path(settings.STEPWISE_ARTIFACT_DIR) / "prm" / ".staging" / f"run{run.id}-a{run.attempts}"
    )


def _resume_dir(run: TrainingRun) -> Path:
    """The run's resume state: one per run, not per attempt, so a retry continues it."""
    return Path(settings.STEPWISE_ARTIFACT_DIR) / "prm" / ".staging" / f"run{run.id}-resume"


def _version_data(version: PRMVersion) -> datasets.TrainingData:
    """The version's frozen snapshot: same labels, same held-out split, every time."""
    snapshot = version.data_snapshot or {}
    fraction = snapshot.get("heldout_fraction")
    return datasets.build_training_data(
        max_labeling_id=snapshot.get("max_labeling_id"),
        heldout_fraction=settings.STEPWISE_HELDOUT_FRACTION if fraction is None else fraction,
        graded_up_to=snapshot.get("max_solution_id"),
    )


def _train(run: TrainingRun, reporter: RunReporter) -> dict[str, Any]:
    from training.prm.config import TrainConfig
    from training.prm.train import train_reward_model

    version = run.prm_version
    if version.state != PRMVersion.State.TRAINING and version.checkpoint_path:
        # An earlier attempt recorded the checkpoint and died before closing the run.
        return {"checkpoint_path": version.checkpoint_path, "note": "trained by an earlier attempt"}
    snapshot_max = (version.data_snapshot or {}).get("max_labeling_id")
    reporter(0.0, f"building data up to labeling {snapshot_max}", force=True)
    data = _version_data(version)
    if not data.train:
        raise TrainingError(f"no training data in the snapshot ({data.snapshot})")
    PRMVersion.objects.filter(id=version.id).update(data_snapshot=data.snapshot)
    reporter(0.05, f"{len(data.train)} training and {len(data.heldout)} held-out examples")

    # Leftovers of earlier, lost attempts: nothing in them is trusted, except the resume state,
    # which the library continues only when it was written for this same config and data.
    staging = _staging_dir(run)
    for attempt in range(1, run.attempts):
        shutil.rmtree(staging.with_name(f"run{run.id}-a{attempt}"), ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    # The version's own choices over the platform's defaults (STEPWISE_TRAIN_DEFAULTS).
    hyper = {
        k: v
        for k, v in {**settings.STEPWISE_TRAIN_DEFAULTS, **(version.hyperparameters or {})}.items()
        if k in TRAIN_KEYS
    }
    config = TrainConfig(
        base_model=version.base_model,
        output_dir=str(staging),
        objective=version.kind,
        resume_dir=str(_resume_dir(run)),
        **hyper,
    )
    result = train_reward_model(
        data.train,
        config,
        validation=data.heldout or None,
        progress=reporter.scaled(0.05, 0.85),
    )
    reporter(0.85, "evaluating on the held-out split", force=True)
    metrics = {f"train_{k}": v for k, v in (result.metrics or {}).items() if _jsonable(v)}
    metrics.update(
        _heldout_metrics(result.checkpoint_dir, data, progress=reporter.scaled(0.85, 0.93))
    )
    active = active_prm_version(version.kind)
    if active is not None and active.checkpoint_path and Path(active.checkpoint_path).is_dir():
        reporter(0.93, f"scoring the held-out split with active {active.name}", force=True)
        try:
            baseline = _heldout_metrics(active.checkpoint_path, data)
            metrics["baseline"] = {"prm_version_id": active.id, **baseline}
        except Exception as exc:  # noqa: BLE001 - a broken old model must not fail a new one
            reporter(0.95, f"baseline not measured, {active.name} did not load: {exc}")
    # The library renamed a complete checkpoint into the staging directory; one more rename moves
    # it to the version's own directory. Both happen while this attempt holds the run row and
    # still owns it, so a superseded attempt can never replace the files of the one that won.
    final = checkpoint_dir_for(version)
    with transaction.atomic():
        _lock_owned(run.id, run.attempts)
        version = PRMVersion.objects.select_for_update().get(id=version.id)
        if final.exists():
            shutil.rmtree(final)  # an earlier attempt got this far but never recorded it
        os.replace(result.checkpoint_dir, final)
        version.checkpoint_path = str(final)
        version.metrics = json_safe(metrics)
        version.state = PRMVersion.State.READY
        version.save(update_fields=["checkpoint_path", "metrics", "state"])
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(_resume_dir(run), ignore_errors=True)
    return {"checkpoint_path": str(final), "metrics": json_safe(metrics)}


def json_safe(value: Any) -> Any:
    """Metrics as Postgres jsonb accepts them: NaN and infinities become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _first_error(solution) -> int | None:
    """Index of the first negative step, -1 when every step is rated and none is, else None."""
    if -1 in solution.ratings:
        return solution.ratings.index(-1)
    if len(solution.ratings) == len(solution.steps) and None not in solution.ratings:
        return -1
    return None


def _heldout_metrics(
    checkpoint: str, data: datasets.TrainingData, *, progress: Progress | None = None
) -> dict[str, Any]:
    from training.prm.evaluate import step_metrics
    from training.prm.score import RewardModelScorer

    if not data.heldout:
        return {"heldout_examples": 0}
    scorer = RewardModelScorer.from_checkpoint(checkpoint)
    scores = scorer.score([(s.problem, s.steps) for s in data.heldout])
    if progress:
        progress(0.5, "scored held-out examples")
    metrics: dict[str, Any] = {
        "heldout_examples": len(data.heldout),
        "heldout_solutions": len(data.heldout_main),
    }
    metrics.update(step_metrics(scores, data.heldout))
    # Longer than the training context: scored on their leading steps only, as trained.
    metrics["truncated_examples"] = sum(s.truncated > 0 for s in scores)
    by_id = {id(s): score for s, score in zip(data.heldout, scores, strict=True)}
    outcome = [
        (by_id[id(s)].score, s.is_correct) for s in data.heldout_main if s.is_correct is not None
    ]
    if len({label for _, label in outcome}) == 2:
        from sklearn.metrics import roc_auc_score

        metrics["solution_auroc"] = float(
            roc_auc_score([int(label) for _, label in outcome], [score for score, _ in outcome])
        )
        metrics["n_outcome_solutions"] = len(outcome)
    return {
        k: (float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v)
        for k, v in metrics.items()
    }


def evaluate_prm_version(
    *,
    prm_version_id: int,
    processbench_path: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Held-out metrics of a finished version (on its own snapshot), optionally ProcessBench.

    ProcessBench follows the benchmark's protocol: the threshold is chosen on the held-out labels
    (leaving out any problem of the benchmark file), never on the benchmark, and F1 is reported
    on the whole file except records of problems the version was trained on (counted).
    Results are stored under `metrics["evaluation"]`.
    """
    from training.prm.evaluate import choose_threshold
    from training.prm.processbench import (
        evaluate_processbench,
        load_processbench,
        problem_text_key,
    )
    from training.prm.score import RewardModelScorer

    version = _ready_version(prm_version_id)
    report = progress or (lambda fraction, message="": None)
    report(0.0, "building the held-out split")
    data = _version_data(version)
    result = _heldout_metrics(version.checkpoint_path, data)
    report(0.5, "held-out metrics done")
    if processbench_path:
        items = load_processbench(processbench_path)
        benchmark = {problem_text_key(item["problem"]) for item in items}
        trained = {problem_text_key(s.problem) for s in data.train}
        kept = [item for item in items if problem_text_key(item["problem"]) not in trained]
        scorer = RewardModelScorer.from_checkpoint(version.checkpoint_path)
        labeled = [(s, _first_error(s)) for s in data.heldout_main]
        labeled = [
            (s, e)
            for s, e in labeled
            if e is not None and problem_text_key(s.problem) not in benchmark
        ]
        if labeled:
            val_scores = scorer.score([(s.problem, s.steps) for s, _ in labeled])
            threshold = choose_threshold(val_scores, [e for _, e in labeled])
            threshold_source = "held-out labels"
        else:
            threshold, threshold_source = 0.5, "default (no held-out labels)"
        result["processbench"] = {
            "file": str(processbench_path),
            "items": len(items),
            "excluded_trained_problems": len(items) - len(kept),
            "threshold_source": threshold_source,
            "n_threshold_solutions": len(labeled),
            **evaluate_processbench(scorer, kept, threshold=threshold),
        }
    report(0.95, "storing metrics")
    with transaction.atomic():
        version = PRMVersion.objects.select_for_update().get(id=prm_version_id)
        evaluation = json_safe({**result, "at": timezone.now().isoformat()})
        version.metrics = {**version.metrics, "evaluation": evaluation}
        version.save(update_fields=["metrics"])
    return result


# --------------------------------------------------------------------------- scoring


def score_solutions(
    *,
    prm_version_id: int,
    solution_ids: list[int] | None = None,
    only_missing: bool = False,
    batch_size: int = SCORE_BATCH,
    progress: Progress | None = None,
) -> int:
    """Score solutions (all when `solution_ids` is None) and upsert SolutionScore rows.

    Each batch is written with one bulk upsert in its own transaction, so a run cut short keeps
    what it wrote and a rerun overwrites rows with the same values (idempotent).
    Returns how many solutions were scored.
    """
    from training.prm.score import RewardModelScorer

    version = _ready_version(prm_version_id)
    solutions = Solution.objects.all()
    if solution_ids is not None:
        solutions = solutions.filter(id__in=solution_ids)
    if only_missing:
        solutions = solutions.exclude(scores__prm_version_id=prm_version_id)
    total = solutions.count()
    report = progress or (lambda fraction, message="": None)
    report(0.0, f"scoring {total} solutions with {version.name}")
    if total == 0:
        return 0
    scorer = RewardModelScorer.from_checkpoint(version.checkpoint_path)
    steps = datasets._Follower(
        datasets._grouped(
            Step.objects.filter(solution__in=solutions)
            .order_by("solution_id", "position")
            .values_list("solution_id", "text")
            .iterator(chunk_size=datasets.STREAM_CHUNK)
        )
    )
    stream = (
        solutions.order_by("id")
        .values_list("id", "problem__text")
        .iterator(chunk_size=datasets.STREAM_CHUNK)
    )
    done = truncated = 0
    batch: list[tuple[int, str, list[str]]] = []

    def flush() -> None:
        nonlocal done, truncated
        scores = scorer.score([(problem, texts) for _, problem, texts in batch])
        # Steps past the model's context are not scored (their probabilities are left out of
        # step_probabilities, which is then shorter than the solution); the log counts them.
        truncated += sum(s.truncated > 0 for s in scores)
        rows = [
            SolutionScore(
                prm_version_id=prm_version_id,
                solution_id=solution_id,
                score=float(s.score),
                step_probabilities=[[float(p) for p in probs] for probs in s.step_probs],
            )
            for (solution_id, _, _), s in zip(batch, scores, strict=True)
        ]
        with transaction.atomic():
            SolutionScore.objects.bulk_create(
                rows,
                update_conflicts=True,
                unique_fields=["prm_version", "solution"],
                update_fields=["score", "step_probabilities"],
            )
        done += len(batch)
        batch.clear()
        note = f", {truncated} longer than the context (last steps unscored)" if truncated else ""
        report(done / total, f"scored {done}/{total}{note}")

    for solution_id, problem_text in stream:
        texts = [row[1] for row in steps.take(solution_id)]
        if texts:
            batch.append((solution_id, problem_text, texts))
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return done


# --------------------------------------------------------------------------- retraining


def retrain_if_needed(
    *,
    force: bool = False,
    kind: str = PRMVersion.Kind.PRM,
    min_new_labels: int | None = None,
) -> PRMVersion | None:
    """Start a new version when enough labels arrived since the active one (or when forced).

    The new version copies the active (else newest ready) version's base model and
    hyperparameters and is promoted on success only if the promotion rule allows it.
    """
    with transaction.atomic():
        # One check at a time: the lock on the newest versions serializes concurrent beats.
        template = (
            PRMVersion.objects.select_for_update()
            .filter(kind=kind)
            .filter(Q(state=PRMVersion.State.ACTIVE) | Q(state=PRMVersion.State.READY))
            .order_by(
                # active first, then newest
                F("activated_at").desc(nulls_last=True),
                "-id",
            )
            .first()
        )
        if template is None:
            logger.info("retrain: no %s version to start from", kind)
            return None
        if PRMVersion.objects.filter(kind=kind, state=PRMVersion.State.TRAINING).exists():
            logger.info("retrain: a %s version is training already", kind)
            return None
        new_labels = labelings_since(active_prm_version(kind) or template)
        minimum = (
            settings.STEPWISE_RETRAIN_MIN_NEW_LABELS if min_new_labels is None else min_new_labels
        )
        if not force and (minimum <= 0 or new_labels < minimum):
            return None
        version = prm_version_create(
            name=f"{kind}-auto-{timezone.now():%Y%m%d-%H%M%S}-{template.id}",
            base_model=template.base_model,
            kind=kind,
            hyperparameters=template.hyperparameters,
        )
        training_run_start(prm_version_id=version.id, activate=True)
        logger.info("retrain: %s started after %s new labelings", version.name, new_labels)
        return version
