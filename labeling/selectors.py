"""Reads of the labeling app: what a labeler sees of an assignment, their own stats, QC stats."""

from __future__ import annotations

import json
from datetime import datetime, time
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db import connection
from django.db.models import Avg, Count
from django.utils import timezone

from labeling.models import (
    Assignment,
    Generation,
    Labeler,
    Labeling,
    LabelingTask,
    Problem,
    Solution,
    Step,
    StepAlternative,
)
from labeling.services import (
    NOT_DONE_BY_SQL,
    SCREENING_GENERATION_NUMBER,
    gold_pairs,
    step_agreement,
)
from labeling.step_text import offered_alternatives


def labeler_for_user(user: User | AnonymousUser) -> Labeler | None:
    if not user.is_authenticated:
        return None
    return Labeler.objects.filter(user_id=user.pk).first()


# Counting what is left stops here: "more than 1000" is all a labeler needs to know, and the
# count stays cheap on rounds of any size.
LEFT_IN_ROUND_CAP = 1000

# Everything the workspace shows of an assignment, in one statement (it is sent with every
# claim): the problem, the steps with their alternatives, and the progress line. Why SQL and not
# the ORM: services.py, "SQL on the hot path".
_PAYLOAD_SQL = f"""
    SELECT p.text, p.reference_answer,
      (SELECT json_agg(json_build_array(s.position, s.text,
                (SELECT json_agg(json_build_array(alt.position, alt.text))
                 FROM {StepAlternative._meta.db_table} alt WHERE alt.step_id = s.id))
              ORDER BY s.position)
       FROM {Step._meta.db_table} s WHERE s.solution_id = mine.solution_id),
      (SELECT count(*) FROM {Labeling._meta.db_table} done
       WHERE done.labeler_id = %(labeler)s AND done.timestamp >= %(start_of_day)s),
      (SELECT count(*) FROM (
         SELECT 1 FROM {LabelingTask._meta.db_table} t
         WHERE t.generation_id = %(generation)s AND t.state = 'open' AND t.kind = %(kind)s
           AND t.id <> mine.id AND {NOT_DONE_BY_SQL}
         LIMIT {LEFT_IN_ROUND_CAP + 1}) capped)
    FROM {LabelingTask._meta.db_table} mine
    JOIN {Solution._meta.db_table} sol ON sol.id = mine.solution_id
    JOIN {Problem._meta.db_table} p ON p.id = sol.problem_id
    WHERE mine.id = %(task)s
"""


def assignment_payload(*, assignment: Assignment, now: datetime | None = None) -> dict[str, Any]:
    """What the workspace needs for one assignment and nothing more.

    No kind, gold, generation, scores or other labelers' work: QC and screening items must look
    exactly like any other task.

    The progress line says where the labeler is: how many tasks they finished today and how
    many are left in the round this task belongs to (for them: open, not labeled or held by them
    yet). It is the same for every kind of task, so a QC item cannot be told apart by it.
    """
    now = now or timezone.now()
    # Loaded with the assignment on every claim path (select_related), so usually no query.
    generation = assignment.task.generation
    kind = (
        LabelingTask.Kind.SCREENING
        if generation.number == SCREENING_GENERATION_NUMBER
        else LabelingTask.Kind.REGULAR
    )
    with connection.cursor() as cursor:
        cursor.execute(
            _PAYLOAD_SQL,
            {
                "task": assignment.task_id,
                "labeler": assignment.labeler_id,
                "generation": generation.pk,
                "kind": kind,
                "start_of_day": _start_of_day(now),
            },
        )
        problem_text, reference_answer, steps, done_today, left = cursor.fetchone()
    if isinstance(steps, str):  # json arrives decoded, unless a text loader is registered
        steps = json.loads(steps)
    draft = None
    if assignment.draft_saved_at is not None:
        draft = {
            "state": assignment.draft_state,
            "active_ms": assignment.draft_active_ms or 0,
            "saved_at": assignment.draft_saved_at,
        }
    if assignment.prefetched:
        done_today += 1  # shown once the task open now is finished
    return {
        "id": assignment.pk,
        "lease_expires_at": assignment.lease_expires_at,
        "problem": {"text": problem_text, "reference_answer": reference_answer},
        "steps": [
            {"position": position, "text": text, "alternatives": _offered(text, alts or [])}
            for position, text, alts in steps or []
        ],
        "draft": draft,
        "progress": {
            "done_today": done_today,
            "round": generation.number,
            "left_in_round": left,
            "left_capped": left > LEFT_IN_ROUND_CAP,
        },
    }


def _offered(step_text: str, alternatives: list[list]) -> list[dict[str, Any]]:
    by_position = {position: text for position, text in alternatives}
    return [
        {"position": position, "text": by_position[position]}
        for position in offered_alternatives(step_text, by_position.items())
    ]


def _start_of_day(now: datetime) -> datetime:
    return timezone.make_aware(
        datetime.combine(timezone.localdate(now), time.min), timezone.get_current_timezone()
    )


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
