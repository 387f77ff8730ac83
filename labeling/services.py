"""Writes of the labeling app: leasing tasks, drafts, submitting labelings, screening, gold.

The leasing invariants (at most N live holders per task, one labeler per solution, one open
lease per labeler) are enforced by constraints on ``Assignment``; the code here only picks
work in the right order and keeps the transactions short. See docs/task-leasing.md.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, models, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from config.errors import StepwiseError
from labeling.models import (
    Assignment,
    Generation,
    LabeledCompletion,
    LabeledStep,
    Labeler,
    Labeling,
    LabelingTask,
    Solution,
    Step,
    StepAlternative,
)
from labeling.step_text import offered_alternatives

LIVE_STATES = (Assignment.State.ACTIVE, Assignment.State.SUBMITTED)
FINISH_REASONS = {choice.value for choice in Labeling.FinishReason}
SCREENING_GENERATION_NUMBER = -1
# The strategy of a phase-1 (interactive) round: its tasks are problems, not solutions, and are
# claimed only from the interactive page (training/phase1/). Same leases, same invariants.
PHASE1_STRATEGY = "phase1"


class LabelingError(StepwiseError):
    """Base of labeling's domain errors; ``config.exception_handler`` answers them."""


class AssignmentNotFound(LabelingError):
    status_code = 404


class NotYourAssignment(LabelingError):
    status_code = 403


class LeaseLost(LabelingError):
    """The lease expired, was swept and maybe reassigned, or its task was cancelled."""

    status_code = 409
    code = "lease_lost"


class DraftConflict(LabelingError):
    """Another tab or window saved a newer draft of the same assignment."""

    status_code = 409
    code = "draft_conflict"


class LabelingInvalid(LabelingError):
    """Field-level validation errors: ``errors`` maps a field name to a list of messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__(fields=errors)
        self.errors = errors


def lease_duration() -> timedelta:
    return timedelta(seconds=settings.STEPWISE_LEASE_SECONDS)


# ---------------------------------------------------------------- SQL on the hot path
#
# Claim and submit run once per task a labeler does, so their statements are written in SQL and
# rows become model instances directly: building the ORM queries was about half of their server
# CPU (BENCHMARKS.md, "Labeling loop under load"). The statements, their locks and their order
# are those of the ORM code they replaced; the invariants stay with the constraints on
# Assignment (docs/task-leasing.md). Rare paths (screening and QC items, expiring lapsed leases)
# keep the ORM.

ASSIGNMENT = Assignment._meta.db_table
TASK = LabelingTask._meta.db_table
GENERATION = Generation._meta.db_table


@functools.cache
def _row_layout(model: type[models.Model]) -> tuple[list[str], list[tuple[int, models.Field]]]:
    """A model's columns in order, and the fields whose database value needs converting (JSON)."""
    fields = model._meta.concrete_fields
    converters = [(i, f) for i, f in enumerate(fields) if hasattr(f, "from_db_value")]
    return [f.attname for f in fields], converters


def select_list(model: type[models.Model], alias: str) -> str:
    """Every column of ``model``, in the order ``from_row`` expects."""
    return ", ".join(f'{alias}."{f.column}"' for f in model._meta.concrete_fields)


def from_row(model: type[models.Model], values: tuple | list) -> Any:
    """A model instance from the values of ``select_list(model, ...)``, as the ORM builds it."""
    attnames, converters = _row_layout(model)
    if converters:
        values = list(values)
        for i, field in converters:
            values[i] = field.from_db_value(values[i], None, connection)
    return model.from_db(DEFAULT_DB_ALIAS, attnames, values)


_ASSIGNMENT_WIDTH = len(Assignment._meta.concrete_fields)
_TASK_WIDTH = len(LabelingTask._meta.concrete_fields)
_ASSIGNMENT_WITH_TASK_SQL = (
    f"SELECT {select_list(Assignment, 'a')}, {select_list(LabelingTask, 't')}, "
    f"{select_list(Generation, 'g')} FROM {ASSIGNMENT} a "
    f"JOIN {TASK} t ON t.id = a.task_id JOIN {GENERATION} g ON g.id = t.generation_id "
)


def _lock_assignments(
    where: str, params: list, *, labeler: Labeler | None = None, order_by: str = "a.id"
) -> list[Assignment]:
    """Lock the assignment rows matching ``where`` (alias ``a``), each with its task and the
    task's generation loaded, as ``select_for_update(of=("self",)).select_related("task",
    "task__generation")`` does; ``labeler`` is attached to those that are theirs."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"{_ASSIGNMENT_WITH_TASK_SQL} WHERE {where} ORDER BY {order_by} FOR UPDATE OF a",
            params,
        )
        rows = cursor.fetchall()
    assignments = []
    for row in rows:
        assignment = from_row(Assignment, row[:_ASSIGNMENT_WIDTH])
        task = from_row(LabelingTask, row[_ASSIGNMENT_WIDTH : _ASSIGNMENT_WIDTH + _TASK_WIDTH])
        LabelingTask.generation.field.set_cached_value(
            task, from_row(Generation, row[_ASSIGNMENT_WIDTH + _TASK_WIDTH :])
        )
        Assignment.task.field.set_cached_value(assignment, task)
        if labeler is not None and assignment.labeler_id == labeler.pk:
            Assignment.labeler.field.set_cached_value(assignment, labeler)
        assignments.append(assignment)
    return assignments


def _update_assignment(assignment: Assignment, **values: Any) -> None:
    """Set columns of one assignment row, and on the instance (``save(update_fields=...)``)."""
    for name, value in values.items():
        setattr(assignment, name, value)
    columns = ", ".join(f'"{Assignment._meta.get_field(name).column}" = %s' for name in values)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {ASSIGNMENT} SET {columns} WHERE id = %s",
            [*(getattr(assignment, Assignment._meta.get_field(n).attname) for n in values)]
            + [assignment.pk],
        )


# ---------------------------------------------------------------- claiming


def _lock_own_assignment(labeler: Labeler, *, prefetched: bool = False) -> Assignment | None:
    """The labeler's open lease (or, with ``prefetched``, their prefetched one), locked."""
    held = _lock_assignments(
        "a.labeler_id = %s AND a.state = 'active' AND a.prefetched = %s",
        [labeler.pk, prefetched],
        labeler=labeler,
    )
    return held[0] if held else None


def _not_done_by(labeler: Labeler, tasks):
    """Tasks whose solution this labeler has neither labeled nor holds.

    Solutions with a blank step are never served: a labeler cannot rate an empty row. Imports
    refuse them; this keeps rows stored before that check out of the queue. The same rule in
    SQL, for the hot path: ``NOT_DONE_BY_SQL``.
    """
    held = Assignment.objects.filter(task=OuterRef("pk"), labeler=labeler, state__in=LIVE_STATES)
    labeled = Labeling.objects.filter(labeler=labeler, solution=OuterRef("solution_id"))
    blank = Step.objects.filter(solution_id=OuterRef("solution_id"), text__regex=r"^\s*$")
    return tasks.filter(~Exists(held), ~Exists(labeled), ~Exists(blank))


# ``_not_done_by`` in SQL, for a task aliased ``t`` and the labeler as ``%(labeler)s``.
NOT_DONE_BY_SQL = f"""
    NOT EXISTS (SELECT 1 FROM {ASSIGNMENT} held WHERE held.task_id = t.id
                AND held.labeler_id = %(labeler)s AND held.state IN ('active', 'submitted'))
    AND NOT EXISTS (SELECT 1 FROM {Labeling._meta.db_table} labeled
                    WHERE labeled.labeler_id = %(labeler)s AND labeled.solution_id = t.solution_id)
    AND NOT EXISTS (SELECT 1 FROM {Step._meta.db_table} blank
                    WHERE blank.solution_id = t.solution_id AND blank.text ~ '^\\s*$')
"""


def _shared_item(labeler: Labeler, tasks) -> LabelingTask | None:
    """A QC or screening item (served to every labeler once; no slot, so no lock needed)."""
    return (
        _not_done_by(labeler, tasks)
        .select_related("generation")
        .order_by("generation__number", "-priority", "id")
        .first()
    )


# Active rounds in the order their tasks are served: phase-2 rounds, or (True) phase-1 rounds.
_GENERATIONS_SQL = {
    phase1: f"""
        SELECT {select_list(Generation, "g")} FROM {GENERATION} g
        WHERE g.state = 'active' AND g.number <> {SCREENING_GENERATION_NUMBER}
          AND g.strategy {op} %(phase1)s
        ORDER BY g.number
    """
    for phase1, op in ((False, "<>"), (True, "="))
}
# The first task of a round with a free slot, in queue order, along the partial index
# labelingtask_open_queue_idx (generation, priority desc, id), skipping rows others hold.
_CANDIDATE_SQL = f"""
    SELECT {select_list(LabelingTask, "t")} FROM {TASK} t
    WHERE t.generation_id = %(generation)s AND t.state = 'open' AND t.kind = 'regular'
      AND t.id <> ALL(%(skip)s)
      AND {NOT_DONE_BY_SQL}
      AND (SELECT count(*) FROM {ASSIGNMENT} live WHERE live.task_id = t.id
           AND (live.state = 'submitted'
                OR (live.state = 'active' AND live.lease_expires_at > %(now)s)))
          < t.labelings_required
    ORDER BY t.priority DESC, t.id
    LIMIT 1
    FOR UPDATE OF t SKIP LOCKED
"""


def _lock_regular_candidate(
    labeler: Labeler, now: datetime, skip: list[int], *, phase1: bool = False
) -> LabelingTask | None:
    """Lock the first regular task with a free slot, skipping rows other claimers hold.

    Generations are walked in order, one query each, so every query follows the partial index
    `labelingtask_open_queue_idx` (generation, priority desc, id) and stops at the first hit.
    """
    with connection.cursor() as cursor:
        cursor.execute(_GENERATIONS_SQL[phase1], {"phase1": PHASE1_STRATEGY})
        generations = [from_row(Generation, row) for row in cursor.fetchall()]
        for generation in generations:
            cursor.execute(
                _CANDIDATE_SQL,
                {"generation": generation.pk, "skip": skip, "labeler": labeler.pk, "now": now},
            )
            row = cursor.fetchone()
            if row is not None:
                task = from_row(LabelingTask, row)
                LabelingTask.generation.field.set_cached_value(task, generation)
                return task
    return None


def _free_slot(task: LabelingTask, labeler: Labeler, now: datetime) -> tuple[int | None, bool]:
    """With the task row locked: return its lapsed leases to the queue and pick a free slot.

    Also tells whether this labeler left a draft on the task in an earlier, lapsed lease.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, state, slot, lease_expires_at, labeler_id, draft_saved_at IS NOT NULL "
            f"FROM {ASSIGNMENT} WHERE task_id = %s",
            [task.pk],
        )
        rows = cursor.fetchall()
    taken, lapsed, has_draft = set(), [], False
    for pk, state, slot, expires, holder, has_saved_draft in rows:
        if state == Assignment.State.ACTIVE and expires <= now:
            lapsed.append(pk)
        elif state in LIVE_STATES:
            taken.add(slot)
        has_draft = has_draft or (holder == labeler.pk and has_saved_draft)
    if lapsed:
        Assignment.objects.filter(
            pk__in=lapsed, state=Assignment.State.ACTIVE, lease_expires_at__lte=now
        ).update(state=Assignment.State.EXPIRED)
    free = [slot for slot in range(task.labelings_required) if slot not in taken]
    return (free[0] if free else None), has_draft


def _open_assignment(
    labeler: Labeler,
    task: LabelingTask,
    slot: int | None,
    *,
    may_have_draft: bool = True,
    prefetched: bool = False,
) -> Assignment:
    now = timezone.now()
    # A labeler whose earlier lease on this task was swept gets their draft back (the stored
    # JSON text is copied as it is).
    draft = (None, None, None)
    with connection.cursor() as cursor:
        if may_have_draft:
            cursor.execute(
                f"SELECT draft_state, draft_active_ms, draft_saved_at FROM {ASSIGNMENT} "
                "WHERE task_id = %s AND labeler_id = %s AND draft_saved_at IS NOT NULL "
                "ORDER BY draft_saved_at DESC LIMIT 1",
                [task.pk, labeler.pk],
            )
            draft = cursor.fetchone() or draft
        cursor.execute(
            f"""
            INSERT INTO {ASSIGNMENT} (task_id, labeler_id, task_kind, slots, slot, state,
                prefetched, lease_expires_at, draft_state, draft_active_ms, draft_saved_at,
                labeling_id, created_at, finished_at)
            VALUES (%s, %s, %s, %s, %s, 'active', %s, %s, %s::jsonb, %s, %s, NULL, %s, NULL)
            RETURNING {select_list(Assignment, ASSIGNMENT)}
            """,
            [
                task.pk,
                labeler.pk,
                task.kind,
                task.labelings_required,
                slot,
                prefetched,
                now + lease_duration(),
                *draft,
                now,
            ],
        )
        assignment = from_row(Assignment, cursor.fetchone())
    Assignment.task.field.set_cached_value(assignment, task)
    Assignment.labeler.field.set_cached_value(assignment, labeler)
    return assignment


def _claim_regular_or_qc(
    labeler: Labeler, now: datetime, *, phase1: bool, prefetched: bool = False
) -> Assignment | None:
    def qc_items():  # built only when asked for: most claims serve a regular task
        return LabelingTask.objects.filter(
            state=LabelingTask.State.OPEN,
            kind=LabelingTask.Kind.QUALITY_CONTROL,
            generation__state=Generation.State.ACTIVE,
        ).exclude(generation__strategy=PHASE1_STRATEGY)

    skip: list[int] = []
    for _attempt in range(20):  # bounded: each miss excludes one task
        task = _lock_regular_candidate(labeler, now, skip, phase1=phase1)
        if task is None:
            break
        if phase1:
            slot, has_draft = _free_slot(task, labeler, now)
            if slot is not None:
                return _open_assignment(
                    labeler, task, slot=slot, may_have_draft=has_draft, prefetched=prefetched
                )
            skip.append(task.pk)
            continue
        if task.generation.qc_rate > 0 and random.random() < task.generation.qc_rate:
            qc_task = _shared_item(labeler, qc_items().filter(generation=task.generation))
            if qc_task is not None:
                return _open_assignment(labeler, qc_task, slot=None, prefetched=prefetched)
        slot, has_draft = _free_slot(task, labeler, now)
        if slot is not None:
            return _open_assignment(
                labeler, task, slot=slot, may_have_draft=has_draft, prefetched=prefetched
            )
        skip.append(task.pk)  # filled by a claim that committed after our snapshot
    if phase1:
        return None
    # No regular work left: QC items still go to every labeler.
    qc_task = _shared_item(labeler, qc_items())
    if qc_task is None:
        return None
    return _open_assignment(labeler, qc_task, slot=None, prefetched=prefetched)


def _claim_once(labeler: Labeler, *, phase1: bool = False) -> Assignment | None:
    now = timezone.now()
    # The open lease first, else a prefetched one (it becomes the open lease): one query.
    own = None
    for held in _lock_assignments(
        "a.labeler_id = %s AND a.state = 'active'",
        [labeler.pk],
        labeler=labeler,
        order_by="a.prefetched, a.id",
    ):
        if _task_cancelled(held.task):
            _update_assignment(held, state=Assignment.State.WITHDRAWN)
        elif own is None:
            own = held
    if own is not None:
        # Their own open lease comes back first; one that lapsed but was not yet swept still
        # holds its slot, so it can simply be renewed.
        _update_assignment(own, lease_expires_at=now + lease_duration(), prefetched=False)
        return own
    if labeler.screening_status != Labeler.ScreeningStatus.PASSED:
        labeler = Labeler.objects.get(pk=labeler.pk)  # may have just been screened
    if labeler.screening_status == Labeler.ScreeningStatus.FAILED:
        return None
    if phase1 and labeler.screening_status != Labeler.ScreeningStatus.PASSED:
        return None  # screening is served by the phase-2 workspace only
    if labeler.screening_status != Labeler.ScreeningStatus.PASSED:
        screening = _shared_item(labeler, screening_items())
        if screening is not None:
            return _open_assignment(labeler, screening, slot=None)
        _screening_evaluate_if_complete(labeler)
        return None  # nothing else before screening is passed
    return _claim_regular_or_qc(labeler, now, phase1=phase1)


def is_phase1(assignment: Assignment) -> bool:
    """Is this a lease on a phase-1 (interactive) round's task?"""
    return assignment.task.generation.strategy == PHASE1_STRATEGY


def assignment_claim(*, labeler: Labeler, phase1: bool = False) -> Assignment | None:
    """Lease the next task to ``labeler`` (or return their open lease); None when no work.

    ``phase1`` picks from phase-1 rounds instead of the others. A labeler's own open lease comes
    back whichever kind it is (one open lease per labeler holds across both): callers check
    ``is_phase1`` and send the labeler to the right page.

    One short transaction: candidate rows are locked with FOR UPDATE SKIP LOCKED, so concurrent
    claimers never wait on each other. A constraint violation (e.g. the same labeler claiming
    from two tabs at once) rolls back that try; the retry then finds the winning lease.
    """
    for _attempt in range(3):
        try:
            with transaction.atomic():
                return _claim_once(labeler, phase1=phase1)
        except IntegrityError:
            continue
    raise LeaseLost("could not claim a task, please retry")


def _prefetch_once(labeler: Labeler, current_id: int) -> Assignment | None:
    now = timezone.now()
    current = _lock_own_assignment_by_id(assignment_id=current_id, labeler=labeler)
    _ensure_lease_live(current, now)
    if current.prefetched or current.task.generation.strategy == PHASE1_STRATEGY:
        return None  # only the open lease of a phase-2 task prefetches
    held = _lock_own_assignment(labeler, prefetched=True)
    if held is not None and _task_cancelled(held.task):
        _update_assignment(held, state=Assignment.State.WITHDRAWN)
        held = None
    if held is not None:
        # Asked again (every heartbeat): the same lease, renewed, so it lapses only with the
        # labeler's session and not while they are busy with the current task.
        _update_assignment(held, lease_expires_at=now + lease_duration())
        return held
    labeler = Labeler.objects.get(pk=labeler.pk)
    if labeler.screening_status != Labeler.ScreeningStatus.PASSED:
        return None  # screening items are served one at a time
    return _claim_regular_or_qc(labeler, now, phase1=False, prefetched=True)


def assignment_prefetch(*, labeler: Labeler, current_id: int) -> Assignment | None:
    """Lease the task after ``current_id`` while the labeler still works on it; None if none.

    A real lease, taken like a claim (same order, same locks, same slot rules), marked
    ``prefetched``: a labeler holds at most one besides their open lease. It is renewed each time
    it is asked for again, expires and is swept like any lease when the labeler goes away, and
    becomes the open lease when the current one is submitted (``assignment_submit``) or lost (the
    next claim). docs/task-leasing.md.
    """
    for _attempt in range(3):
        try:
            with transaction.atomic():
                return _prefetch_once(labeler, current_id)
        except IntegrityError:
            continue
    raise LeaseLost("could not prefetch a task, please retry")


# ---------------------------------------------------------------- leases and drafts


def _lock_own_assignment_by_id(*, assignment_id: int, labeler: Labeler) -> Assignment:
    """Lock an assignment row; raise unless it exists and belongs to ``labeler``.

    Call inside a transaction; whether the lease is still running is checked by the caller.
    """
    found = _lock_assignments("a.id = %s", [assignment_id], labeler=labeler)
    if not found:
        raise AssignmentNotFound("no such assignment")
    assignment = found[0]
    if assignment.labeler_id != labeler.pk:
        raise NotYourAssignment("this assignment belongs to another labeler")
    return assignment


def _task_cancelled(task: LabelingTask) -> bool:
    return (
        task.state == LabelingTask.State.CANCELLED
        or task.generation.state == Generation.State.CANCELLED
    )


def _ensure_lease_live(assignment: Assignment, now: datetime) -> None:
    if assignment.state != Assignment.State.ACTIVE or assignment.lease_expires_at <= now:
        raise LeaseLost("the lease on this task has expired or was reassigned")
    if _task_cancelled(assignment.task):
        raise LeaseLost("this task was cancelled")


@transaction.atomic
def assignment_heartbeat(*, assignment_id: int, labeler: Labeler) -> Assignment:
    now = timezone.now()
    assignment = _lock_own_assignment_by_id(assignment_id=assignment_id, labeler=labeler)
    _ensure_lease_live(assignment, now)
    assignment.lease_expires_at = now + lease_duration()
    assignment.save(update_fields=["lease_expires_at"])
    return assignment


def _ensure_draft_not_older(stored: Any, incoming: Any) -> None:
    """Refuse a draft from one tab that would overwrite a newer one saved by another tab.

    The workspace numbers its changes (``rev``, carried over on restore) and names its tab
    (``tab``). A save from the same tab always passes (a retried request included); a save from
    another tab passes only with a higher ``rev`` than the stored one, i.e. after it has seen it.
    """
    if not (isinstance(stored, dict) and isinstance(incoming, dict)):
        return
    stored_tab, incoming_tab = stored.get("tab"), incoming.get("tab")
    stored_rev, incoming_rev = stored.get("rev"), incoming.get("rev")
    if not (isinstance(stored_rev, int) and isinstance(incoming_rev, int)):
        return
    if stored_tab and incoming_tab and stored_tab != incoming_tab and incoming_rev <= stored_rev:
        raise DraftConflict(
            "this task was changed in another tab or window; reload to continue with its ratings"
        )


@transaction.atomic
def assignment_save_draft(
    *, assignment_id: int, labeler: Labeler, state: Any, active_ms: int
) -> Assignment:
    now = timezone.now()
    assignment = _lock_own_assignment_by_id(assignment_id=assignment_id, labeler=labeler)
    _ensure_lease_live(assignment, now)
    _ensure_draft_not_older(assignment.draft_state, state)
    assignment.draft_state = state
    assignment.draft_active_ms = active_ms
    assignment.draft_saved_at = now
    assignment.lease_expires_at = now + lease_duration()
    assignment.save(
        update_fields=["draft_state", "draft_active_ms", "draft_saved_at", "lease_expires_at"]
    )
    return assignment


def leases_expire(*, now: datetime | None = None) -> int:
    """Return every lapsed lease to the queue (the beat sweep); safe to run any number of times."""
    now = now or timezone.now()
    return Assignment.objects.filter(
        state=Assignment.State.ACTIVE, lease_expires_at__lte=now
    ).update(state=Assignment.State.EXPIRED)


# ---------------------------------------------------------------- submitting


@dataclass(frozen=True)
class _StepInput:
    position: int
    rating: int | None
    flagged: bool
    alternatives: list[dict[str, Any]]


def _validate_steps(
    *,
    finish_reason: str,
    reason: str,
    raw_steps: list[dict[str, Any]],
    step_texts: list[str],
    alternatives: dict[int, dict[int, str]],
) -> list[_StepInput]:
    """Check a submission against the contract's rules; raise LabelingInvalid per field."""
    errors: dict[str, list[str]] = {}
    if finish_reason not in FINISH_REASONS:
        raise LabelingInvalid({"finish_reason": [f"must be one of {sorted(FINISH_REASONS)}"]})
    if finish_reason in {"give_up", "bad_problem"} and not reason.strip():
        errors["reason"] = ["a reason is required when giving up or reporting a bad problem"]
    steps = [
        _StepInput(
            position=s["position"],
            rating=s.get("rating"),
            flagged=bool(s.get("flagged", False)),
            alternatives=list(s.get("alternatives") or []),
        )
        for s in raw_steps
    ]
    messages: list[str] = []
    if [s.position for s in steps] != list(range(len(steps))):
        messages.append("steps must be positions 0, 1, 2, ... in order, without gaps")
    elif len(steps) > len(step_texts):
        messages.append(f"the solution has only {len(step_texts)} steps")
    if messages:
        errors["steps"] = messages
        raise LabelingInvalid(errors)

    negatives = [s.position for s in steps if s.rating == -1]
    with_alternatives = [s.position for s in steps if s.alternatives]
    if finish_reason == "found_error":
        if not steps or any(s.rating is None for s in steps):
            messages.append("found_error needs every step up to the error rated")
        elif negatives != [steps[-1].position]:
            messages.append("found_error: the last step sent must be the first and only -1")
        elif with_alternatives not in ([], [steps[-1].position]):
            messages.append("alternatives are rated only on the erroneous step")
    elif finish_reason == "solution":
        if len(steps) != len(step_texts) or any(s.rating is None for s in steps):
            messages.append("solution needs every step of the solution rated")
        elif negatives:
            messages.append("solution cannot contain a -1 step (use found_error)")
        elif with_alternatives:
            messages.append("alternatives are rated only after a -1 step")
    else:
        if negatives and negatives != [steps[-1].position]:
            messages.append("a -1 step must be the last step sent")
        elif with_alternatives and with_alternatives != negatives:
            messages.append("alternatives are rated only on the -1 step")

    if not messages:
        for s in steps:
            if not s.alternatives:
                continue
            offered = alternatives.get(s.position, {})
            sent = [a["position"] for a in s.alternatives]
            if len(set(sent)) != len(sent) or not set(sent) <= set(offered):
                messages.append(
                    f"step {s.position}: alternatives must be among positions {sorted(offered)}"
                )
            elif finish_reason == "found_error" and (
                set(sent) != set(offered) or any(a.get("rating") is None for a in s.alternatives)
            ):
                messages.append(f"step {s.position}: rate every alternative")
        if finish_reason == "found_error" and not with_alternatives:
            offered = alternatives.get(steps[-1].position, {})
            if offered:
                messages.append(f"step {steps[-1].position}: rate every alternative")
    if messages:
        errors["steps"] = messages
    if errors:
        raise LabelingInvalid(errors)
    return steps


# A labeling, its steps and their rated completions, and the assignment marked submitted with
# it: one statement (a labeling is stored whole or not at all, docs/task-leasing.md).
_STORE_LABELING_SQL = f"""
    WITH labeling AS (
        INSERT INTO {Labeling._meta.db_table} (solution_id, labeler_id, task_id, generation_id,
            is_quality_control, is_screening, finish_reason, finish_reason_text, total_time_ms,
            timestamp, source, ground_truth_answer_override, ground_truth_solution_override,
            import_key, created_at)
        VALUES (%(solution)s, %(labeler)s, %(task)s, %(generation)s, %(qc)s, %(screening)s,
            %(finish_reason)s, %(reason)s, %(total_time_ms)s, %(now)s, %(source)s, NULL, NULL,
            NULL, %(now)s)
        RETURNING id
    ), steps AS (
        INSERT INTO {LabeledStep._meta.db_table} (labeling_id, position, completions_null,
            chosen_completion, has_human_completion)
        SELECT labeling.id, s.position, false, s.chosen, false
        FROM labeling, unnest(%(step_positions)s::int[], %(chosen)s::int[]) AS s(position, chosen)
        RETURNING id, position
    ), completions AS (
        INSERT INTO {LabeledCompletion._meta.db_table} (labeled_step_id, position, text, rating,
            flagged)
        SELECT steps.id, c.position, c.text, c.rating, c.flagged
        FROM steps JOIN unnest(%(c_steps)s::int[], %(c_positions)s::int[], %(c_texts)s::text[],
                               %(c_ratings)s::smallint[], %(c_flagged)s::boolean[])
                        AS c(step, position, text, rating, flagged)
             ON c.step = steps.position
    ), submitted AS (
        UPDATE {ASSIGNMENT} SET state = 'submitted', labeling_id = (SELECT id FROM labeling),
            finished_at = %(now)s, prefetched = false
        WHERE id = %(assignment)s
    )
    SELECT id FROM labeling
"""


def _store_labeling(
    *,
    assignment: Assignment,
    finish_reason: str,
    reason: str,
    total_time_ms: int,
    steps: list[_StepInput],
    step_texts: list[str],
    alternatives: dict[int, dict[int, str]],
    now: datetime,
) -> Labeling:
    task = assignment.task
    completions: dict[str, list] = {
        "c_steps": [],
        "c_positions": [],
        "c_texts": [],
        "c_ratings": [],
        "c_flagged": [],
    }

    def completion(step: int, position: int, text: str, rating: int | None, flagged: bool):
        for key, value in zip(completions, (step, position, text, rating, flagged), strict=True):
            completions[key].append(value)

    for s in steps:
        completion(s.position, 0, step_texts[s.position], s.rating, s.flagged)
        for alt in sorted(s.alternatives, key=lambda a: a["position"]):
            completion(
                s.position,
                alt["position"],
                alternatives[s.position][alt["position"]],
                alt.get("rating"),
                bool(alt.get("flagged", False)),
            )
    labeling = Labeling(
        solution_id=task.solution_id,
        labeler_id=assignment.labeler_id,
        task_id=task.pk,
        generation_id=task.generation_id,
        is_quality_control=task.kind == LabelingTask.Kind.QUALITY_CONTROL,
        is_screening=task.kind == LabelingTask.Kind.SCREENING,
        finish_reason=finish_reason,
        finish_reason_text=reason,
        total_time_ms=total_time_ms,
        timestamp=now,
        source=Labeling.Source.WORKSPACE,
        created_at=now,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            _STORE_LABELING_SQL,
            {
                "assignment": assignment.pk,
                "solution": labeling.solution_id,
                "labeler": labeling.labeler_id,
                "task": labeling.task_id,
                "generation": labeling.generation_id,
                "qc": labeling.is_quality_control,
                "screening": labeling.is_screening,
                "finish_reason": finish_reason,
                "reason": reason,
                "total_time_ms": total_time_ms,
                "now": now,
                "source": labeling.source,
                "step_positions": [s.position for s in steps],
                # As in PRM800K phase 2: the step itself is chosen unless it is the -1 step.
                "chosen": [None if s.rating in (-1, None) else 0 for s in steps],
                **completions,
            },
        )
        labeling.pk = cursor.fetchone()[0]
    labeling._state.adding = False
    labeling._state.db = DEFAULT_DB_ALIAS
    assignment.state = Assignment.State.SUBMITTED
    assignment.labeling = labeling
    assignment.finished_at = now
    assignment.prefetched = False
    return labeling


def _solution_content(solution_id: int) -> tuple[list[str], dict[int, dict[int, str]]]:
    # Steps (alternative position 0) and their alternatives (positions from 1), one statement.
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT s.position, 0, s.text FROM {Step._meta.db_table} s WHERE s.solution_id = %s
            UNION ALL
            SELECT s.position, a.position, a.text FROM {StepAlternative._meta.db_table} a
            JOIN {Step._meta.db_table} s ON s.id = a.step_id WHERE s.solution_id = %s
            ORDER BY 1, 2
            """,
            [solution_id, solution_id],
        )
        rows = cursor.fetchall()
    step_texts = [text for _step, position, text in rows if position == 0]
    stored: dict[int, dict[int, str]] = {}
    for step_position, position, text in rows:
        if position:
            stored.setdefault(step_position, {})[position] = text
    # Only what the workspace offers must (and may) be rated: no blank or repeated alternative.
    alternatives: dict[int, dict[int, str]] = {}
    for step_position, alts in stored.items():
        if step_position < len(step_texts):
            keep = offered_alternatives(step_texts[step_position], alts.items())
            if keep:
                alternatives[step_position] = {p: alts[p] for p in keep}
    return step_texts, alternatives


@transaction.atomic
def assignment_submit(
    *,
    assignment_id: int,
    labeler: Labeler,
    finish_reason: str,
    reason: str,
    total_time_ms: int,
    steps: list[dict[str, Any]],
) -> tuple[Labeling, bool]:
    """Store the labeling of a leased task whole; returns (labeling, created).

    A retried submit of an already submitted assignment returns the first labeling with
    ``created=False`` and writes nothing.
    """
    now = timezone.now()
    # Concurrent submits of one regular task's slots must see each other to mark it done, so
    # they queue on the task row. Lock order is task, then assignment, as in claiming.
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT t.id FROM {TASK} t WHERE t.id = (SELECT a.task_id FROM {ASSIGNMENT} a "
            "WHERE a.id = %s AND a.task_kind = 'regular') FOR NO KEY UPDATE OF t",
            [assignment_id],
        )
    assignment = _lock_own_assignment_by_id(assignment_id=assignment_id, labeler=labeler)
    if assignment.state == Assignment.State.SUBMITTED:
        return assignment.labeling, False
    _ensure_lease_live(assignment, now)
    if is_phase1(assignment):
        raise LabelingInvalid(
            {"assignment": ["a phase-1 task is finished from the interactive page"]}
        )
    step_texts, alternatives = _solution_content(assignment.task.solution_id)
    valid_steps = _validate_steps(
        finish_reason=finish_reason,
        reason=reason,
        raw_steps=steps,
        step_texts=step_texts,
        alternatives=alternatives,
    )
    labeling = _store_labeling(
        assignment=assignment,
        finish_reason=finish_reason,
        reason=reason,
        total_time_ms=total_time_ms,
        steps=valid_steps,
        step_texts=step_texts,
        alternatives=alternatives,
        now=now,
    )
    task = assignment.task
    with connection.cursor() as cursor:
        # The next task the page already shows becomes the labeler's open lease.
        cursor.execute(
            f"""
            UPDATE {ASSIGNMENT} SET prefetched = false, lease_expires_at = %(lease)s
            WHERE labeler_id = %(labeler)s AND state = 'active' AND prefetched
              AND NOT EXISTS (SELECT 1 FROM {ASSIGNMENT} open WHERE open.labeler_id = %(labeler)s
                              AND open.state = 'active' AND NOT open.prefetched)
            """,
            {"labeler": labeler.pk, "lease": now + lease_duration()},
        )
        if task.kind == LabelingTask.Kind.REGULAR:
            # Done once N labelings are in; the task row is locked, so concurrent submits of its
            # other slots count this one.
            cursor.execute(
                f"""
                UPDATE {TASK} SET state = 'done' WHERE id = %(task)s AND state = 'open'
                  AND (SELECT count(*) FROM {ASSIGNMENT} WHERE task_id = %(task)s
                       AND state = 'submitted') >= %(required)s
                """,
                {"task": task.pk, "required": task.labelings_required},
            )
    if task.kind == LabelingTask.Kind.SCREENING:
        _screening_evaluate_if_complete(Labeler.objects.select_for_update().get(pk=labeler.pk))
    return labeling, True


# ---------------------------------------------------------------- screening and gold


def screening_items():
    return LabelingTask.objects.filter(
        kind=LabelingTask.Kind.SCREENING,
        state=LabelingTask.State.OPEN,
        generation__number=SCREENING_GENERATION_NUMBER,
    )


def step_agreement(pairs: list[tuple[int | None, int]]) -> float | None:
    """Share of (rating, gold) pairs that are equal; None when nothing was compared. A step left
    unrated (rating None) counts as a disagreement."""
    if not pairs:
        return None
    return sum(1 for rating, gold in pairs if rating == gold) / len(pairs)


def gold_pairs(labelings) -> list[tuple[int | None, int]]:
    """(labeler's rating or None, gold rating) for every gold step asked of the labeler, over the
    given labelings.

    Asked are the gold steps up to and including the gold's first -1: the instructions have a
    labeler rate the solution up to its first error, as phase 2 does. Such a step left unrated
    (say, by giving up after rating one step) pairs with None, a disagreement; otherwise rating
    one step and giving up would agree perfectly. Steps past the gold's first error count only
    where the labeler rated them too.
    """
    golds = dict(
        Labeling.objects.filter(
            pk__in=labelings.values("pk"), task__gold_ratings__isnull=False
        ).values_list("pk", "task__gold_ratings")
    )
    rated: dict[int, dict[int, int]] = {labeling_id: {} for labeling_id in golds}
    for labeling_id, position, rating in LabeledCompletion.objects.filter(
        labeled_step__labeling_id__in=list(golds), position=0, rating__isnull=False
    ).values_list("labeled_step__labeling_id", "labeled_step__position", "rating"):
        rated[labeling_id][position] = rating
    pairs: list[tuple[int | None, int]] = []
    for labeling_id, gold in golds.items():
        own = rated[labeling_id]
        first_error = next((i for i, g in enumerate(gold) if g == -1), len(gold) - 1)
        for position, gold_rating in enumerate(gold):
            if gold_rating is None:
                continue
            if position <= first_error or position in own:
                pairs.append((own.get(position), gold_rating))
    return pairs


def _screening_evaluate_if_complete(labeler: Labeler) -> None:
    """Once no screening item is left for a pending labeler, admit or reject them."""
    if labeler.screening_status != Labeler.ScreeningStatus.PENDING:
        return
    if _not_done_by(labeler, screening_items()).exists():
        return
    labelings = Labeling.objects.filter(labeler=labeler, is_screening=True, task__isnull=False)
    if not labelings.exists():
        return
    agreement = step_agreement(gold_pairs(labelings)) or 0.0
    passed = agreement >= settings.STEPWISE_SCREENING_THRESHOLD
    labeler.screening_agreement = agreement
    labeler.screening_status = (
        Labeler.ScreeningStatus.PASSED if passed else Labeler.ScreeningStatus.FAILED
    )
    labeler.save(update_fields=["screening_agreement", "screening_status"])


def _gold_from_labeling(labeling_id: int, solution: Solution) -> list[int]:
    labeling = Labeling.objects.filter(pk=labeling_id).first()
    if labeling is None:
        raise LabelingInvalid({"expert_labeling_id": ["no such labeling"]})
    if labeling.solution_id != solution.pk:
        raise LabelingInvalid({"expert_labeling_id": ["that labeling is of another solution"]})
    ratings = list(
        LabeledCompletion.objects.filter(labeled_step__labeling=labeling, position=0)
        .order_by("labeled_step__position")
        .values_list("rating", flat=True)
    )
    if not ratings or any(r is None for r in ratings):
        raise LabelingInvalid({"expert_labeling_id": ["that labeling has unrated steps"]})
    return ratings


@transaction.atomic
def task_mark_gold(
    *,
    solution_id: int,
    kind: str,
    generation_id: int | None = None,
    gold_ratings: list[int] | None = None,
    expert_labeling_id: int | None = None,
) -> LabelingTask:
    """Make a solution a screening item (generation -1) or a QC item of a generation.

    Gold comes from explicit ratings or from an expert's labeling of the same solution, which
    the task then names as its source (``gold_labeling``).
    """
    errors: dict[str, list[str]] = {}
    solution = Solution.objects.filter(pk=solution_id).first()
    if solution is None:
        raise LabelingInvalid({"solution_id": ["no such solution"]})
    if kind not in (LabelingTask.Kind.SCREENING, LabelingTask.Kind.QUALITY_CONTROL):
        errors["kind"] = ["must be 'screening' or 'qc'"]
    if (gold_ratings is None) == (expert_labeling_id is None):
        errors["gold_ratings"] = ["give either gold_ratings or expert_labeling_id"]
    if errors:
        raise LabelingInvalid(errors)
    if gold_ratings is None:
        gold_ratings = _gold_from_labeling(expert_labeling_id, solution)
    if not gold_ratings or len(gold_ratings) > solution.num_steps:
        raise LabelingInvalid(
            {"gold_ratings": [f"give 1 to {solution.num_steps} ratings, one per step"]}
        )
    if any(r not in (-1, 0, 1) for r in gold_ratings):
        raise LabelingInvalid({"gold_ratings": ["ratings are -1, 0 or 1"]})

    if kind == LabelingTask.Kind.SCREENING:
        generation, _ = Generation.objects.get_or_create(
            number=SCREENING_GENERATION_NUMBER,
            defaults={"strategy": "screening", "state": Generation.State.ACTIVE},
        )
    else:
        generation = Generation.objects.filter(pk=generation_id).first()
        if generation is None or generation.number == SCREENING_GENERATION_NUMBER:
            raise LabelingInvalid({"generation_id": ["give the id of a labeling round"]})
    task = (
        LabelingTask.objects.select_for_update()
        .filter(generation=generation, solution=solution)
        .first()
    )
    if task is None:
        return LabelingTask.objects.create(
            generation=generation,
            solution=solution,
            kind=kind,
            gold_ratings=gold_ratings,
            gold_labeling_id=expert_labeling_id,
        )
    if task.kind != kind and task.assignments.exists():
        raise LabelingInvalid({"kind": ["this task is already being labeled as another kind"]})
    task.kind = kind
    task.gold_ratings = gold_ratings
    task.gold_labeling_id = expert_labeling_id
    task.state = LabelingTask.State.OPEN if task.state == task.State.DONE else task.state
    task.save(update_fields=["kind", "gold_ratings", "gold_labeling", "state"])
    return task


# ---------------------------------------------------------------- rounds


@transaction.atomic
def tasks_withdraw(*, generation_id: int, state: str = LabelingTask.State.CANCELLED) -> int:
    """Take a generation's untouched queued tasks out of the queue; returns how many.

    Tasks with a live lease or a finished labeling are left alone (their leases run out or
    their labelings stand). ``state`` is ``cancelled`` or ``paused``.
    """
    if state not in (LabelingTask.State.CANCELLED, LabelingTask.State.PAUSED):
        raise LabelingInvalid({"state": ["must be 'cancelled' or 'paused'"]})
    touched = Assignment.objects.filter(task=OuterRef("pk"), state__in=LIVE_STATES)
    candidates = (
        LabelingTask.objects.select_for_update(skip_locked=True)
        .filter(generation_id=generation_id, state=LabelingTask.State.OPEN)
        .filter(~Exists(touched))
        .values_list("id", flat=True)
    )
    return LabelingTask.objects.filter(id__in=list(candidates)).update(state=state)


@transaction.atomic
def tasks_resume(*, generation_id: int) -> int:
    """Put a generation's paused tasks back in the queue; returns how many."""
    return LabelingTask.objects.filter(
        generation_id=generation_id, state=LabelingTask.State.PAUSED
    ).update(state=LabelingTask.State.OPEN)
