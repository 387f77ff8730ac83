"""Small ORM helpers for the labeling tests: labelers, solutions with steps, tasks."""

from __future__ import annotations

import itertools
import uuid

from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from labeling.models import (
    Generation,
    Labeler,
    LabelingTask,
    Problem,
    Solution,
    Step,
    StepAlternative,
)

PASSWORD = "a long test password 4711"
_counter = itertools.count()


def make_labeler(
    name: str | None = None,
    *,
    role: str = "labeler",
    screening: str = "passed",
    can_log_in: bool = False,
) -> Labeler:
    """A labeler; only with ``can_log_in`` a password (hashing it is slow, tokens are not)."""
    name = name or f"labeler-{uuid.uuid4().hex[:8]}"
    password = PASSWORD if can_log_in else None
    user = get_user_model().objects.create_user(username=name, password=password)
    return Labeler.objects.create(user=user, role=role, screening_status=screening)


def client_for(labeler: Labeler) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=labeler.user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def make_generation(number: int | None = None, **fields) -> Generation:
    if number is None:
        number = 1000 + next(_counter)
    generation, _ = Generation.objects.get_or_create(number=number, defaults=fields)
    return generation


def make_solution(steps: int = 3, *, alternatives: dict[int, int] | None = None) -> Solution:
    """A solution with `steps` steps; `alternatives` maps a step position to how many it has."""
    key = uuid.uuid4().hex
    problem = Problem.objects.create(text=f"What is $1+1$? ({key})", reference_answer="2")
    solution = Solution.objects.create(
        problem=problem, final_answer="2", fingerprint=key, num_steps=steps
    )
    for position in range(steps):
        step = Step.objects.create(solution=solution, position=position, text=f"step {position}")
        for alt in range(1, (alternatives or {}).get(position, 0) + 1):
            StepAlternative.objects.create(step=step, position=alt, text=f"alt {position}.{alt}")
    return solution


def make_task(
    generation: Generation | None = None,
    *,
    steps: int = 3,
    required: int = 1,
    kind: str = "regular",
    gold: list[int] | None = None,
    priority: int = 0,
    alternatives: dict[int, int] | None = None,
) -> LabelingTask:
    generation = generation or make_generation()
    return LabelingTask.objects.create(
        solution=make_solution(steps, alternatives=alternatives),
        generation=generation,
        kind=kind,
        labelings_required=required,
        gold_ratings=gold,
        priority=priority,
    )


def solution_body(steps: int) -> dict:
    return {
        "finish_reason": "solution",
        "reason": "",
        "total_time_ms": 1234,
        "steps": [{"position": i, "rating": 1, "flagged": False} for i in range(steps)],
    }


def make_labeling_body(ratings: list[int], finish_reason: str) -> dict:
    """Service keyword arguments for a labeling with these step ratings (no alternatives)."""
    return {
        "finish_reason": finish_reason,
        "reason": "" if finish_reason in ("solution", "found_error") else "because",
        "total_time_ms": 1000,
        "steps": [{"position": i, "rating": r, "flagged": False} for i, r in enumerate(ratings)],
    }
