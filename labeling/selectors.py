"""Reads of the labeling app: what a labeler sees of an assignment, their own stats, QC stats."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Avg, Count
from django.utils import timezone

from labeling.models import (
    Assignment,
    Generation,
    Labeler,
    Labeling,
    LabelingTask,
    Problem,
    Step,
)
from labeling.services import (
    SCREENING_GENERATION_NUMBER,
    _not_done_by,
    gold_pairs,
    step_agreement,
)
from labeling.step_text import offered_alternatives


def labeler_for_user(user: User | AnonymousUser) -> Labeler | None:
    if not user.is_authenticated:
        return None
    return Labeler.objects.filter(user_id=user.pk).first()


def assignment_payload(*, assignment: Assignment) -> dict[str, Any]:
    """What the workspace needs for one assignment and nothing more.

    No kind, gold, generation, scores or other labelers' work: QC and screening items must look
    exactly like any other task.
    """
    problem = Problem.objects.only("text", "reference_answer").get(
        solutions__tasks__assignments=assignment
    )
    steps = (
        Step.objects.filter(solution__tasks__assignments=assignment)
        .order_by("position")
        .prefetch_related("alternatives")
    )
    draft = None
    if assignment.draft_saved_at is not None:
        draft = {
            "state": assignment.draft_state,
            "active_ms": assignment.draft_active_ms or 0,
            "saved_at": assignment.draft_saved_at,
        }
    return {
        "id": assignment.pk,
        "lease_expires_at": assignment.lease_expires_at,
        "problem": {"text": problem.text, "reference_answer": problem.reference_answer},
        "steps": [
            {
                "position": step.position,
                "text": step.text,
                "alternatives": _offered(step),
            }
            for step in steps
        ],
        "draft": draft,
        "progress": assignment_progress(assignment=assignment),
    }


def _offered(step: Step) -> list[dict[str, Any]]:
    by_position = {alt.position: alt.text for alt in step.alternatives.all()}
    return [
        {"position": position, "text": by_position[position]}
        for position in offered_alternatives(step.text, by_position.items())
    ]


def _start_of_day(now: datetime) -> datetime:
    return timezone.make_aware(
        datetime.combine(timezone.localdate(now), time.min), timezone.get_current_timezone()
    )


# Counting what is left stops here: "more than 1000" is all a labeler needs to know, and the
# count stays cheap on rounds of any size.
LEFT_IN_ROUND_CAP = 1000


def assignment_progress(*, assignment: Assignment, now: datetime | None = None) -> dict[str, Any]:
    """Where the labeler is: how many tasks they finished today and how many are left in the
    round this task belongs to (for them: open, not labeled or held by them yet).

    The same for every kind of task, so a QC item cannot be told apart by its progress line.
    """
    now = now or timezone.now()
    labeler = assignment.labeler
    done_today = Labeling.objects.filter(
        labeler_id=assignment.labeler_id, timestamp__gte=_start_of_day(now)
    ).count()
    if assignment.prefetched:
        done_today += 1  # shown once the task open now is finished
    # Loaded with the assignment on every claim path (select_related), so usually no query.
    generation = assignment.task.generation
    kind = (
        LabelingTask.Kind.SCREENING
        if generation.number == SCREENING_GENERATION_NUMBER
        else LabelingTask.Kind.REGULAR
    )
    open_tasks = LabelingTask.objects.filter(
        generation=generation, state=LabelingTask.State.OPEN, kind=kind
    ).exclude(assignments=assignment)
    left = _not_done_by(labeler, open_tasks).order_by()[: LEFT_IN_ROUND_CAP + 1].count()
    return {
        "done_today": done_today,
        "round": generation.number,
        "left_in_round": left,
        "left_capped": left > LEFT_IN_ROUND_CAP,
    }


def labeler_summary(*, labeler: Labeler, now: datetime | None = None) -> dict[str, Any]:
    """The labeler's own page: today's count and mean time, recent work, screening status."""
    now = now or timezone.now()
    today = Labeling.objects.filter(labeler=labeler, timestamp__gte=_start_of_day(now)).aggregate(
        n=Count("id"), mean=Avg("total_time_ms")
    )
    recent = Labeling.objects.filter(labeler=labeler).order_by("-timestamp")[:20]
    return {
        "username": labeler.user.get_username(),
        "screening_status": labeler.screening_status,
        "tasks_today": today["n"],
        "mean_time_ms_today": round(today["mean"]) if today["mean"] is not None else None,
        "recent": [
            {
                "finished_at": labeling.timestamp,
                "total_time_ms": labeling.total_time_ms,
                "finish_reason": labeling.finish_reason,
            }
            for labeling in recent
        ],
    }


# Rounds whose QC items may be shown as QC, with gold, to the labelers who did them: the round no
# longer serves tasks, so knowing an item was QC cannot change how anyone labels it.
CLOSED_ROUND_STATES = (Generation.State.FINISHED, Generation.State.CANCELLED)


def labeler_history(*, labeler: Labeler, limit: int = 20) -> list[dict[str, Any]]:
    """The labeler's own past labelings, newest first: the problem, each rated step with their
    rating, and for QC items of a closed round the gold rating beside theirs."""
    labelings = (
        Labeling.objects.filter(labeler=labeler)
        .select_related("solution__problem", "generation", "task")
        .prefetch_related("steps__completions")
        .order_by("-timestamp", "-id")[:limit]
    )
    history = []
    for labeling in labelings:
        gold = None
        if (
            labeling.is_quality_control
            and labeling.task is not None
            and labeling.generation is not None
            and labeling.generation.state in CLOSED_ROUND_STATES
        ):
            gold = labeling.task.gold_ratings
        steps = []
        for step in labeling.steps.all():
            completions = sorted(step.completions.all(), key=lambda c: c.position)
            own = next((c for c in completions if c.position == 0), None)
            steps.append(
                {
                    "position": step.position,
                    "text": own.text if own else "",
                    "rating": own.rating if own else None,
                    "flagged": bool(own.flagged) if own else False,
                    "gold": gold[step.position]
                    if gold is not None and step.position < len(gold)
                    else None,
                    "alternatives": [
                        {"text": c.text, "rating": c.rating, "flagged": bool(c.flagged)}
                        for c in completions
                        if c.position > 0
                    ],
                }
            )
        compared = [(s["rating"], s["gold"]) for s in steps if s["rating"] is not None]
        compared = [(r, g) for r, g in compared if g is not None]
        history.append(
            {
                "id": labeling.pk,
                "finished_at": labeling.timestamp,
                "finish_reason": labeling.finish_reason,
                "reason": labeling.finish_reason_text,
                "total_time_ms": labeling.total_time_ms,
                "problem": labeling.solution.problem.text,
                "reference_answer": labeling.solution.problem.reference_answer,
                "steps": steps,
                "quality_control": gold is not None,
                "gold_agreement": step_agreement(compared) if gold is not None else None,
            }
        )
    return history


def qc_agreement_by_labeler(*, generation_id: int | None = None) -> list[dict[str, Any]]:
    """Each labeler's step agreement with gold on the QC items they labeled."""
    qc = Labeling.objects.filter(is_quality_control=True, task__isnull=False)
    if generation_id is not None:
        qc = qc.filter(generation_id=generation_id)
    rows = []
    for labeler_id, n_items in (
        qc.values_list("labeler_id").annotate(n=Count("id")).order_by("labeler_id")
    ):
        pairs = gold_pairs(qc.filter(labeler_id=labeler_id))
        rows.append(
            {
                "labeler_id": labeler_id,
                "labeler": str(Labeler.objects.select_related("user").get(pk=labeler_id)),
                "qc_items": n_items,
                "steps_compared": len(pairs),
                "agreement": step_agreement(pairs),
            }
        )
    return rows
