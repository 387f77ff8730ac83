"""Small ORM factories for the active-learning tests (real rows in the test database)."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

from django.contrib.auth import get_user_model

from labeling.models import Labeler, Problem, Solution, Step
from training.models import PRMVersion, SolutionScore

_n = itertools.count(1)


def person(
    role: str = "labeler", *, name: str | None = None, password: str = "pw-123456"
) -> Labeler:
    name = name or f"{role}-{next(_n)}"
    user = get_user_model().objects.create_user(username=name, password=password)
    return Labeler.objects.create(
        user=user, role=role, screening_status=Labeler.ScreeningStatus.PASSED
    )


def problem() -> Problem:
    n = next(_n)
    return Problem.objects.create(text=f"What is {n} + {n}?", reference_answer=str(2 * n))


def solution(prob: Problem, *, grade: str = "correct", steps: list[str] | None = None) -> Solution:
    steps = steps or ["We add the numbers.", "# Answer\n\n2"]
    key = hashlib.sha256(f"{prob.id}|{next(_n)}".encode()).hexdigest()
    sol = Solution.objects.create(
        problem=prob, grade=grade, fingerprint=key, num_steps=len(steps), source="test"
    )
    Step.objects.bulk_create(
        Step(solution=sol, position=i, text=text) for i, text in enumerate(steps)
    )
    return sol


def ready_version(tmp_path: Path, name: str = "prm-a", **fields) -> PRMVersion:
    """A ready version whose checkpoint folder exists (scores are written by hand in tests)."""
    checkpoint = tmp_path / name
    checkpoint.mkdir(parents=True, exist_ok=True)
    return PRMVersion.objects.create(
        name=name,
        base_model=str(tmp_path),
        state="ready",
        checkpoint_path=str(checkpoint),
        **fields,
    )


def score(version: PRMVersion, sol: Solution, value: float, step_neg: list[float] | None = None):
    probs = [[p, 0.0, 1.0 - p] for p in (step_neg or [0.1] * sol.num_steps)]
    return SolutionScore.objects.create(
        prm_version=version, solution=sol, score=value, step_probabilities=probs
    )
