"""Writes of the active-learning app: launching, running, pausing and cancelling rounds.

A round (``Generation``) goes ``launching`` -> ``active`` -> (``paused`` <-> ``active``) and ends
``cancelled``, ``finished`` or ``failed``. Launching runs in Celery (see ``tasks``):

1. ``round_prepare_scores`` (gpu queue): retrain a PRM if asked, then score the candidate pool
   with the round's PRM, in chunks, reporting progress on ``Generation.progress``.
2. ``round_select`` (default queue): one transaction selects in SQL (``selection``), queues the
   ``LabelingTask``s, records a ``Selection`` per task and copies each score to
   ``Solution.selection_score``, and turns the round active.

Each step checks the round's state and what ``progress`` says is done, so a redelivered or
repeated task does nothing twice. See ``docs/round-selection.md``.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, Max, OuterRef
from django.utils import timezone

from active_learning import selection, strategies
from active_learning.models import Selection
from config.errors import StepwiseError
from config.jobs import KeepAlive, Throttle, holder_alive, worker_identity
from labeling.models import Assignment, Generation, LabelingTask, Solution
from labeling.services import tasks_resume, tasks_withdraw
from training import services as training
from training.models import PRMVersion, SolutionScore, TrainingRun
from training.selectors import active_prm_version

logger = logging.getLogger(__name__)

MAX_ROUND_SIZE = 1_000_000
MAX_LABELINGS_PER_TASK = 20
# Solutions per scoring call: each call loads the model once and takes an id list in one
# query, and a cancel is noticed between calls.
SCORE_CHUNK = 50_000
# Serializes round numbering and selection against each other.
_ROUND_LOCK = zlib.crc32(b"stepwise.active_learning.rounds")
# Progress writes from long loops are throttled to one per this many seconds.
_PROGRESS_EVERY_S = 1.0


class RoundError(StepwiseError):
    """A request about a round that cannot be honoured; ``errors`` maps fields to messages
    (a field-level 400, answered by ``config.exception_handler``)."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__(fields=errors)
        self.errors = errors


class RoundConflict(RoundError):
    """The round is in a state that forbids the action: a 409 whose detail is the messages."""

    status_code = 409

    def body(self) -> dict[str, Any]:
        return {"detail": " ".join(m for ms in self.errors.values() for m in ms)}


# --------------------------------------------------------------------------- launch


def _usable_version(version: PRMVersion) -> bool:
    return version.state in (
        PRMVersion.State.READY,
        PRMVersion.State.ACTIVE,
        PRMVersion.State.RETIRED,
    ) and bool(version.checkpoint_path)


@transaction.atomic
def round_launch(
    *,
    launched_by: Any | None,
    strategy: str,
    size: int,
    prm_version_id: int | None = None,
    strategy_params: dict[str, Any] | None = None,
    labelings_per_task: int = 1,
    qc_rate: float = 0.0,
    retrain: bool = False,
) -> Generation:
    """Create the next generation in state ``launching`` and start its pipeline after commit.

    Without a PRM version only ``uniform`` applies, unless ``retrain`` (which trains a new
    version from the active one's base model and hyperparameters). Raises ``RoundError`` with
    field messages for bad input and ``RoundConflict`` while another round is launching.
    """
    errors: dict[str, list[str]] = {}
    params = dict(strategy_params or {})
    if strategy not in strategies.STRATEGIES:
        errors["strategy"] = [f"Choose one of: {', '.join(strategies.STRATEGIES)}."]
    else:
        try:
            strategies.select([], 0, strategy, params)
        except (strategies.StrategyError, TypeError) as exc:
            errors["strategy_params"] = [str(exc)]
    if not 1 <= size <= MAX_ROUND_SIZE:
        errors["size"] = [f"Give a number of solutions between 1 and {MAX_ROUND_SIZE}."]
    if not 1 <= labelings_per_task <= MAX_LABELINGS_PER_TASK:
        errors["labelings_per_task"] = [f"Give 1 to {MAX_LABELINGS_PER_TASK}."]
    if not 0.0 <= qc_rate <= 1.0:
        errors["qc_rate"] = ["Give a share between 0 and 1."]
    version: PRMVersion | None = None
    if prm_version_id is not None:
        version = PRMVersion.objects.filter(id=prm_version_id).first()
        if version is None:
            errors["prm_version"] = [f"No PRM version with id {prm_version_id}."]
        elif not retrain and not _usable_version(version):
            errors["prm_version"] = [f"{version.name} is {version.state}: it cannot score yet."]
    elif retrain:
        version = active_prm_version()
        if version is None:
            errors["retrain"] = [
                "Retraining starts from a PRM version's base model: choose one "
                "(no version is active)."
            ]
    if version is None and not retrain and strategy in strategies.STRATEGIES:
        if strategy != "uniform":
            errors.setdefault("prm_version", []).append(
                f"{strategy} ranks by PRM scores: choose a PRM version or use uniform."
            )
    if errors:
        raise RoundError(errors)

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_ROUND_LOCK])
    if Generation.objects.filter(state=Generation.State.LAUNCHING).exists():
        raise RoundConflict({"detail": ["Another round is launching; wait for it to finish."]})
    highest = Generation.objects.aggregate(n=Max("number"))["n"]
    # Generation -1 holds screening questions; rounds count from 0.
    number = 0 if highest is None else max(highest + 1, 0)
    if strategy == "uniform":
        # A fixed seed per round: the batch can be recomputed from the record.
        params.setdefault("seed", number)
    try:
        with transaction.atomic():
            generation = Generation.objects.create(
                number=number,
                strategy=strategy,
                strategy_params=params,
                prm_version=version,
                state=Generation.State.LAUNCHING,
                labelings_per_task=labelings_per_task,
                qc_rate=qc_rate,
                target_size=size,
                retrain=retrain,
                launched_by=launched_by,
                progress={"stage": "queued", "fraction": 0.0, "message": "waiting for a worker"},
            )
    except IntegrityError as exc:  # the one-launching constraint, under a race
        raise RoundConflict({"detail": ["Another round is launching."]}) from exc
    needs_scores = retrain or version is not None
    transaction.on_commit(lambda: _start_pipeline(generation.id, needs_scores))
    logger.info("round %s launched (%s, %s solutions)", number, strategy, size)
    return generation


def _start_pipeline(generation_id: int, needs_scores: bool) -> None:
    from active_learning import tasks

    tasks.start_round_pipeline(generation_id=generation_id, needs_scores=needs_scores)


# --------------------------------------------------------------------------- progress


def _holder() -> dict[str, str]:
    """Who works on the round's pipeline step, and when it last said so (``config.jobs``)."""
    return {"worker": worker_identity(), "heartbeat_at": timezone.now().isoformat()}


def _set_progress(generation_id: int, **fields: Any) -> None:
    """Merge ``fields`` into the round's progress (its own short transaction); each write is
    also a heartbeat of the step."""
    with transaction.atomic():
        generation = Generation.objects.select_for_update().get(id=generation_id)
        generation.progress = {**generation.progress, **fields, **_holder()}
        generation.save(update_fields=["progress"])


def round_beat(*, generation_id: int) -> bool:
    """One heartbeat of the pipeline step working on a launching round; False once it left
    ``launching`` (nothing is written then)."""
    with transaction.atomic():
        generation = (
            Generation.objects.select_for_update()
            .filter(id=generation_id, state=Generation.State.LAUNCHING)
            .first()
        )
        if generation is None:
            return False
        generation.progress = {**generation.progress, **_holder()}
        generation.save(update_fields=["progress"])
        return True


def round_keep_alive(generation_id: int) -> KeepAlive:
    """The heartbeat thread of a pipeline step (beats every STEPWISE_JOB_HEARTBEAT_SECONDS)."""
    return KeepAlive(lambda: round_beat(generation_id=generation_id), name=f"round {generation_id}")


def round_pipeline_alive(generation: Generation, *, now: datetime | None = None) -> bool:
    """Is a worker still at this launching round's pipeline step? Same rule as for runs
    (``config.jobs.holder_alive``): same host, its process lives; any host, its heartbeat is
    younger than STEPWISE_TRAINING_STALE_SECONDS. Judge a round locked (``select_for_update``):
    the selection step holds that lock for its whole transaction and cannot beat meanwhile."""
    progress = generation.progress or {}
    worker, beat = progress.get("worker"), progress.get("heartbeat_at")
    if not worker or not beat:
        return False
    return holder_alive(worker, datetime.fromisoformat(beat), now=now)


def _throttled(generation_id: int, stage: str, start: float, span: float) -> Callable:
    """A progress callback mapping a step's 0..1 onto [start, start + span] of the round."""
    throttle = Throttle(_PROGRESS_EVERY_S)

    def report(fraction: float, message: str = "") -> None:
        if not throttle.due(final=fraction >= 1.0):
            return
        _set_progress(
            generation_id,
            stage=stage,
            fraction=round(start + span * max(0.0, min(1.0, fraction)), 4),
            message=message,
        )

    return report


@transaction.atomic
def round_fail(*, generation_id: int, error: str) -> None:
    """Record a failed launch; the round leaves ``launching`` so another may start."""
    generation = Generation.objects.select_for_update().get(id=generation_id)
    if generation.state != Generation.State.LAUNCHING:
        return
    generation.state = Generation.State.FAILED
    generation.progress = {**generation.progress, "stage": "failed", "error": error[-2000:]}
    generation.save(update_fields=["state", "progress"])


# --------------------------------------------------------------------------- scoring


def _retrain(generation: Generation, report: Callable) -> PRMVersion:
    """Train (or finish training) this round's own PRM version; returns it once usable."""
    name = f"round-{generation.number}-prm"
    version = PRMVersion.objects.filter(name=name).first()
    if version is None:
        template = generation.prm_version
        if template is None:
            raise RoundError({"retrain": ["No PRM version to copy the base model from."]})
        version = training.prm_version_create(
            name=name,
            base_model=template.base_model,
            kind=template.kind,
            hyperparameters=template.hyperparameters,
        )
        # Runs here, on the gpu worker that runs this task; promotion follows the usual rule.
        training.training_run_start(prm_version_id=version.id, activate=True, enqueue=False)
    if not _usable_version(version):
        run = version.runs.filter(kind=TrainingRun.Kind.TRAIN).order_by("-id").first()
        if run is None or run.state == TrainingRun.State.FAILED:
            run = training.training_run_start(
                prm_version_id=version.id, activate=True, enqueue=False
            )
        training.training_run_execute(run_id=run.id, echo=report)
        version.refresh_from_db()
        run.refresh_from_db()
        if not _usable_version(version):
            raise RoundError(
                {"retrain": [f"training {name} ended {run.state}: {run.error[-500:]}"]}
            )
    return version


def _unscored_candidate_ids(prm_version_id: int) -> list[int]:
    pool = selection.candidate_pool(prm_version_id=None)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT solution_id FROM ({pool.sql}) pool
                WHERE NOT EXISTS (
                    SELECT 1 FROM {SolutionScore._meta.db_table} sc
                    WHERE sc.solution_id = pool.solution_id AND sc.prm_version_id = %s)
                ORDER BY solution_id""",
            [*pool.params, prm_version_id],
        )
        return [row[0] for row in cursor.fetchall()]


def round_prepare_scores(*, generation_id: int) -> bool:
    """Retrain if the round asks for it, then score every unscored candidate with its PRM.

    Returns False when there is nothing to do (the round left ``launching`` or was scored).
    """
    generation = Generation.objects.get(id=generation_id)
    if generation.state != Generation.State.LAUNCHING or generation.progress.get("scored"):
        return False
    if generation.retrain and not generation.progress.get("trained_version_id"):
        _set_progress(generation_id, stage="training", fraction=0.0, message="training a PRM")
        version = _retrain(generation, _throttled(generation_id, "training", 0.0, 0.5))
        with transaction.atomic():
            generation = Generation.objects.select_for_update().get(id=generation_id)
            generation.prm_version = version
            generation.progress = {
                **generation.progress,
                "trained_version_id": version.id,
                "trained_version": version.name,
            }
            generation.save(update_fields=["prm_version", "progress"])
    version_id = generation.prm_version_id
    if version_id is None:
        raise RoundError({"prm_version": ["This round has no PRM version to score with."]})
    start = 0.5 if generation.retrain else 0.0
    ids = _unscored_candidate_ids(version_id)
    _set_progress(generation_id, stage="scoring", fraction=start, message=f"{len(ids)} to score")
    done = 0
    span = (1.0 - start) * 0.9  # the last tenth is the selection's
    for offset in range(0, len(ids), SCORE_CHUNK):
        chunk = ids[offset : offset + SCORE_CHUNK]
        if not Generation.objects.filter(
            id=generation_id, state=Generation.State.LAUNCHING
        ).exists():
            return False  # cancelled while scoring
        report = _throttled(
            generation_id,
            "scoring",
            start + span * offset / len(ids),
            span * len(chunk) / len(ids),
        )
        done += training.score_solutions(
            prm_version_id=version_id, solution_ids=chunk, progress=report
        )
        _set_progress(generation_id, message=f"scored {done}/{len(ids)}")
    _set_progress(generation_id, scored=True, message=f"scored {done} candidates")
    return True


# --------------------------------------------------------------------------- selection


def round_select(*, generation_id: int) -> int:
    """Select the round's batch in SQL and queue it; returns how many tasks were queued.

    Skips solutions already labeled or in a live task (the candidate pool's definition). Safe
    to run twice: a round no longer ``launching`` is left alone.
    """
    # Committed before the selection's own transaction, so the console can show the stage.
    if Generation.objects.filter(id=generation_id, state=Generation.State.LAUNCHING).exists():
        _set_progress(generation_id, stage="selecting", message="selecting in the database")
    return _select_and_queue(generation_id)


@transaction.atomic
def _select_and_queue(generation_id: int) -> int:
    generation = Generation.objects.select_for_update().get(id=generation_id)
    if generation.state != Generation.State.LAUNCHING:
        return 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_ROUND_LOCK])
    pool = selection.candidate_pool(prm_version_id=generation.prm_version_id)
    picks = selection.select_from_pool(
        pool, generation.target_size or 0, generation.strategy, generation.strategy_params
    )
    tasks = LabelingTask.objects.bulk_create(
        LabelingTask(
            solution_id=pick.solution_id,
            generation=generation,
            kind=LabelingTask.Kind.REGULAR,
            labelings_required=generation.labelings_per_task,
        )
        for pick in picks
    )
    Selection.objects.bulk_create(
        Selection(
            generation=generation,
            solution_id=pick.solution_id,
            task=task,
            rank=rank,
            reason=pick.reason,
            score=pick.score,
            key=pick.key if isinstance(pick.key, float) else None,
        )
        for rank, (pick, task) in enumerate(zip(picks, tasks, strict=True))
    )
    with connection.cursor() as cursor:
        # The score that chose each solution, as PRM800K's pre_generated_verifier_score.
        cursor.execute(
            f"""UPDATE {Solution._meta.db_table} s SET selection_score = sel.score
                FROM {Selection._meta.db_table} sel
                WHERE sel.generation_id = %s AND sel.solution_id = s.id
                  AND sel.score IS NOT NULL""",
            [generation.id],
        )
    wrong = Solution.objects.filter(
        id__in=[p.solution_id for p in picks], grade=Solution.Grade.WRONG
    ).count()
    generation.state = Generation.State.ACTIVE if picks else Generation.State.FINISHED
    generation.progress = {
        **generation.progress,
        "stage": "queued" if picks else "empty",
        "fraction": 1.0,
        "selected": len(picks),
        "wrong_answers": wrong,
        "message": f"queued {len(picks)} solutions" if picks else "no candidates left in the pool",
    }
    generation.save(update_fields=["state", "progress"])
    logger.info("round %s: queued %s tasks", generation.number, len(picks))
    return len(picks)


# --------------------------------------------------------------------------- pause/cancel


def _locked(generation_id: int) -> Generation:
    try:
        return Generation.objects.select_for_update().get(id=generation_id)
    except Generation.DoesNotExist as exc:
        raise RoundError({"generation": [f"No round with id {generation_id}."]}) from exc


@transaction.atomic
def round_pause(*, generation_id: int) -> Generation:
    """Take the round's unclaimed tasks out of the queue; leased work may still be submitted."""
    generation = _locked(generation_id)
    if generation.state != Generation.State.ACTIVE:
        raise RoundConflict(
            {"state": [f"Only an active round can be paused; it is {generation.state}."]}
        )
    withdrawn = tasks_withdraw(generation_id=generation_id, state=LabelingTask.State.PAUSED)
    generation.state = Generation.State.PAUSED
    generation.progress = {**generation.progress, "paused_tasks": withdrawn}
    generation.save(update_fields=["state", "progress"])
    return generation


@transaction.atomic
def round_resume(*, generation_id: int) -> Generation:

    generation = _locked(generation_id)
    if generation.state != Generation.State.PAUSED:
        raise RoundConflict(
            {"state": [f"Only a paused round can resume; it is {generation.state}."]}
        )
    tasks_resume(generation_id=generation_id)
    generation.state = Generation.State.ACTIVE
    generation.save(update_fields=["state"])
    return generation


@transaction.atomic
def round_cancel(*, generation_id: int) -> Generation:
    """End the round: its unclaimed tasks (queued or paused) leave the queue for good."""
    generation = _locked(generation_id)
    if generation.state not in (
        Generation.State.LAUNCHING,
        Generation.State.ACTIVE,
        Generation.State.PAUSED,
    ):
        raise RoundConflict({"state": [f"The round is {generation.state} already."]})
    # Paused tasks go back to open first so one withdrawal cancels them all.
    tasks_resume(generation_id=generation_id)
    withdrawn = tasks_withdraw(generation_id=generation_id, state=LabelingTask.State.CANCELLED)
    generation.state = Generation.State.CANCELLED
    generation.progress = {**generation.progress, "cancelled_tasks": withdrawn}
    generation.save(update_fields=["state", "progress"])
    return generation


# --------------------------------------------------------------------------- finishing


@transaction.atomic
def rounds_finish_complete() -> int:
    """Mark active rounds whose regular tasks are all labeled (none queued, paused or leased)
    as finished; returns how many. QC items stay open for every labeler, so they do not count.
    """
    unfinished = LabelingTask.objects.filter(
        generation=OuterRef("pk"),
        kind=LabelingTask.Kind.REGULAR,
        state__in=[LabelingTask.State.OPEN, LabelingTask.State.PAUSED],
    )
    leased = Assignment.objects.filter(
        task__generation=OuterRef("pk"), state=Assignment.State.ACTIVE
    )
    done = (
        Generation.objects.select_for_update(skip_locked=True)
        .filter(state=Generation.State.ACTIVE, number__gte=0)
        .filter(Exists(LabelingTask.objects.filter(generation=OuterRef("pk"))))
        .filter(~Exists(unfinished), ~Exists(leased))
    )
    ids = list(done.values_list("id", flat=True))
    return Generation.objects.filter(id__in=ids).update(state=Generation.State.FINISHED)
