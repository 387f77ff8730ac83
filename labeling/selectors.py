"""Reads of the labeling app: what a labeler sees of an assignment, their own stats, QC stats."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Avg, Count
from django.utils import timezone

from labeling.models import Assignment, Labeler, Labeling, Problem, Step
from labeling.services import gold_pairs, step_agreement


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
                "alternatives": [
                    {"position": alt.position, "text": alt.text}
                    for alt in sorted(step.alternatives.all(), key=lambda a: a.position)
                ],
            }
            for step in steps
        ],
        "draft": draft,
    }


def labeler_summary(*, labeler: Labeler, now: datetime | None = None) -> dict[str, Any]:
    """The labeler's own page: today's count and mean time, recent work, screening status."""
    now = now or timezone.now()
    start_of_day = timezone.make_aware(
        datetime.combine(timezone.localdate(now), time.min), timezone.get_current_timezone()
    )
    today = Labeling.objects.filter(labeler=labeler, timestamp__gte=start_of_day).aggregate(
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
