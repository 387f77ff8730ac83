"""Hand-made labelings for the training tests (plain ORM writes, committed like real data)."""

from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, datetime

from django.contrib.auth import get_user_model

from labeling.models import (
    Generation,
    LabeledCompletion,
    LabeledStep,
    Labeler,
    Labeling,
    LabelingTask,
    Problem,
    Solution,
    Step,
    StepAlternative,
)

_counter = itertools.count()


def labeler(name: str | None = None) -> Labeler:
    name = name or f"labeler-{next(_counter)}"
    # No password: hashing one costs most of a second on a busy machine.
    user = get_user_model().objects.create_user(username=name, password=None)
    return Labeler.objects.create(user=user)


def generation(number: int = 0) -> Generation:
    return Generation.objects.get_or_create(number=number)[0]


def problem(text: str | None = None, *, source_id: str | None = None) -> Problem:
    n = next(_counter)
    return Problem.objects.create(
        text=text or f"What is {n} + {n}?", reference_answer=str(2 * n), source_id=source_id
    )


def solution(
    prob: Problem,
    steps: list[str],
    *,
    grade: str = Solution.Grade.UNGRADED,
    alternatives: dict[int, list[str]] | None = None,
) -> Solution:
    key = hashlib.sha256(f"{prob.id}|{'|'.join(steps)}|{next(_counter)}".encode()).hexdigest()
    sol = Solution.objects.create(
        problem=prob, grade=grade, fingerprint=key, num_steps=len(steps), source="synthetic"
    )
    for position, text in enumerate(steps):
        step = Step.objects.create(solution=sol, position=position, text=text)
        for alt_position, alt in enumerate((alternatives or {}).get(position, []), start=1):
            StepAlternative.objects.create(step=step, position=alt_position, text=alt)
    return sol


def labeling(
    sol: Solution,
    ratings: list[int | None],
    *,
    who: Labeler | None = None,
    finish_reason: str | None = None,
    alternatives: dict[int, list[tuple[str, int | None]]] | None = None,
    gen: Generation | None = None,
    is_quality_control: bool = False,
    is_screening: bool = False,
    task: LabelingTask | None = None,
) -> Labeling:
    """Phase-2 style: completion 0 is the solution's own step; alternatives follow it."""
    if finish_reason is None:
        finish_reason = "found_error" if -1 in ratings else "solution"
    made = Labeling.objects.create(
        solution=sol,
        labeler=who or labeler(),
        generation=gen,
        task=task,
        is_quality_control=is_quality_control,
        is_screening=is_screening,
        finish_reason=finish_reason,
        timestamp=datetime(2026, 1, 1, tzinfo=UTC),
    )
    steps = list(sol.steps.order_by("position").values_list("text", flat=True))
    for position, rating in enumerate(ratings):
        alts = (alternatives or {}).get(position, [])
        labeled = LabeledStep.objects.create(
            labeling=made, position=position, chosen_completion=None if alts else 0
        )
        LabeledCompletion.objects.create(
            labeled_step=labeled, position=0, text=steps[position], rating=rating
        )
        for index, (text, alt_rating) in enumerate(alts, start=1):
            LabeledCompletion.objects.create(
                labeled_step=labeled, position=index, text=text, rating=alt_rating
            )
    return made


def import_world(world) -> list[Solution]:
    """Synthetic `LabeledSolution`s (training.prm.synthetic) stored as one labeling each."""
    problems: dict[str, Problem] = {}
    made = []
    for item in world:
        prob = problems.get(item.problem_id)
        if prob is None:
            prob = problems[item.problem_id] = Problem.objects.create(
                text=item.problem, reference_answer="", source_id=item.problem_id
            )
        grade = {True: Solution.Grade.CORRECT, False: Solution.Grade.WRONG}.get(
            item.is_correct, Solution.Grade.UNGRADED
        )
        sol = solution(prob, list(item.steps), grade=grade)
        labeling(sol, list(item.ratings))
        made.append(sol)
    return made
