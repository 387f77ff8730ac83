"""Rows for export tests, created directly through the ORM (no importer involved)."""

from __future__ import annotations

import hashlib
import itertools
import uuid
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model

from labeling.models import (
    Generation,
    LabeledCompletion,
    LabeledStep,
    Labeler,
    Labeling,
    Problem,
    Solution,
    Step,
)

_numbers = itertools.count(1)


def labeler(name: str) -> Labeler:
    user, _ = get_user_model().objects.get_or_create(username=name)
    found, _ = Labeler.objects.get_or_create(user=user)
    return found


def who(exported_id: str) -> str:
    """The username behind an exported ``labeler``; fails unless it is a labeler's pseudonym
    (an export must never carry a username)."""
    return Labeler.objects.get(pseudonym=uuid.UUID(exported_id)).user.get_username()


def generation(number: int) -> Generation:
    found, _ = Generation.objects.get_or_create(number=number)
    return found


def solution(
    steps: list[str], *, problem_text: str = "What is $1+1$?", answer: str = "2"
) -> Solution:
    problem, _ = Problem.objects.get_or_create(
        text=problem_text, defaults={"reference_answer": answer, "reference_solution": "1+1=2"}
    )
    fingerprint = hashlib.sha256(f"{next(_numbers)}{problem_text}{steps}".encode()).hexdigest()
    made = Solution.objects.create(
        problem=problem,
        final_answer=answer,
        selection_score=0.5,
        fingerprint=fingerprint,
        num_steps=len(steps),
    )
    Step.objects.bulk_create(
        Step(solution=made, position=i, text=text) for i, text in enumerate(steps)
    )
    return made


def labeling(
    *,
    by: Labeler,
    of: Solution,
    steps: list[dict[str, Any]],
    timestamp: datetime,
    finish_reason: str = "solution",
    gen: Generation | None = None,
    qc: bool = False,
    screening: bool = False,
) -> Labeling:
    """``steps``: dicts with ``completions`` [(text, rating)] and ``chosen`` (index or None)."""
    made = Labeling.objects.create(
        solution=of,
        labeler=by,
        generation=gen,
        is_quality_control=qc,
        is_screening=screening,
        finish_reason=finish_reason,
        total_time_ms=1234,
        timestamp=timestamp,
    )
    for position, step in enumerate(steps):
        labeled = LabeledStep.objects.create(
            labeling=made, position=position, chosen_completion=step.get("chosen")
        )
        LabeledCompletion.objects.bulk_create(
            LabeledCompletion(labeled_step=labeled, position=j, text=text, rating=rating)
            for j, (text, rating) in enumerate(step["completions"])
        )
    return made
