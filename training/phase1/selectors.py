"""Reads of phase-1 labeling: what the interactive page shows, and the rounds for admins."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q, QuerySet

from labeling.models import Generation, LabelingTask
from labeling.services import PHASE1_STRATEGY
from training.phase1.services import Trajectory, round_params


def trajectory_payload(trajectory: Trajectory) -> dict[str, Any]:
    """The page's state: problem, decided steps (with their rated candidates), the current
    candidates, the draft. Never the task's kind, the round, gold or scores."""
    assignment = trajectory.assignment
    steps = []
    for step in trajectory.steps:
        offered = step.candidates.candidates
        steps.append(
            {
                "position": step.position,
                "text": trajectory.texts[step.position],
                "written": step.human_text is not None,
                "chosen": step.chosen_completion,
                "candidates": [
                    {"text": c["text"], "rating": step.ratings[j], "flagged": step.flags[j]}
                    for j, c in enumerate(offered)
                ],
            }
        )
    current = None
    if trajectory.candidates is not None:
        current = {
            "position": trajectory.candidates.position,
            "candidates": [
                {"index": j, "text": c["text"], "ends_solution": c["ends_solution"]}
                for j, c in enumerate(trajectory.candidates.candidates)
            ],
            "elapsed_ms": trajectory.candidates.elapsed_ms,
        }
    draft = None
    if assignment.draft_saved_at is not None:
        draft = {
            "state": assignment.draft_state,
            "active_ms": assignment.draft_active_ms or 0,
            "saved_at": assignment.draft_saved_at,
        }
    return {
        "id": assignment.pk,
        "state": assignment.state,
        "lease_expires_at": assignment.lease_expires_at,
        "problem": {
            "text": trajectory.problem.text,
            "reference_answer": trajectory.problem.reference_answer,
        },
        "k": round_params(assignment)["k"],
        "steps": steps,
        "current": current,
        "draft": draft,
        "active_ms": assignment.draft_active_ms or 0,
        "labeling_id": trajectory.labeling.pk if trajectory.labeling else None,
        "finish_reason": trajectory.labeling.finish_reason if trajectory.labeling else None,
    }


def phase1_rounds() -> QuerySet[Generation]:
    """Phase-1 rounds, newest first, with task counts."""
    return (
        Generation.objects.filter(strategy=PHASE1_STRATEGY)
        .annotate(
            tasks_total=Count("tasks"),
            tasks_done=Count("tasks", filter=Q(tasks__state=LabelingTask.State.DONE)),
        )
        .order_by("-number")
    )
