"""`--oracle imported`: labelings in the database become the pool and the held-out set."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from active_learning.management.commands.simulate_rounds import load_imported_world
from labeling.models import (
    LabeledCompletion,
    LabeledStep,
    Labeler,
    Labeling,
    Problem,
    Solution,
    Step,
)

WHEN = datetime(2024, 1, 1, tzinfo=UTC)


def make_labeler(name: str) -> Labeler:
    user = get_user_model().objects.create(username=name)
    return Labeler.objects.create(user=user)


def make_solution(problem: Problem, steps: list[str], grade: str) -> Solution:
    solution = Solution.objects.create(
        problem=problem,
        final_answer="x",
        grade=grade,
        fingerprint=hashlib.sha256(f"{problem.pk}{steps}".encode()).hexdigest(),
        num_steps=len(steps),
    )
    Step.objects.bulk_create(
        Step(solution=solution, position=i, text=t) for i, t in enumerate(steps)
    )
    return solution


def make_labeling(labeler, solution, steps, *, screening=False, human=None) -> Labeling:
    """steps: one list of (text, rating) completions per step; human: {position: (text, rating)}."""
    labeling = Labeling.objects.create(
        solution=solution,
        labeler=labeler,
        is_screening=screening,
        finish_reason="found_error",
        timestamp=WHEN,
    )
    for position, completions in enumerate(steps):
        text, rating = (human or {}).get(position, (None, None))
        labeled = LabeledStep.objects.create(
            labeling=labeling,
            position=position,
            has_human_completion=text is not None,
            human_completion_text=text,
            human_completion_rating=rating,
        )
        LabeledCompletion.objects.bulk_create(
            LabeledCompletion(labeled_step=labeled, position=j, text=t, rating=r)
            for j, (t, r) in enumerate(completions)
        )
    return labeling


def make_labeled_problems(count: int) -> dict:
    """`count` problems with one right and one wrong-answer labeled solution each."""
    ann, bob = make_labeler("ann"), make_labeler("bob")
    problems = [
        Problem.objects.create(text=f"problem {i}", reference_answer="1") for i in range(count)
    ]
    expected = {}
    for problem in problems:
        right = make_solution(problem, ["a", "b", "c"], Solution.Grade.CORRECT)
        make_labeling(ann, right, [[("a", 1)], [("b", 0)], [("c", 1)]])
        # bob's later labeling of the same solution disagrees; the first labeling wins
        make_labeling(bob, right, [[("a", -1)]])
        wrong = make_solution(problem, ["a", "d", "e"], Solution.Grade.WRONG)
        # phase 2: the first error ends the labeling; alternatives follow the step itself
        make_labeling(ann, wrong, [[("a", 1)], [("d", -1), ("alt", 1)]])
        expected[(problem.text, "b")] = ([1, 0, 1], True)
        expected[(problem.text, "d")] = ([1, -1, None], False)
    return {"ann": ann, "bob": bob, "problems": problems, "expected": expected}


@pytest.mark.django_db
def test_imported_labelings_become_a_pool_and_a_heldout_split_by_problem():
    made = make_labeled_problems(10)
    ann, bob, problems, expected = made["ann"], made["bob"], made["problems"], made["expected"]
    # a phase-1 trajectory: step 1 was the chosen completion 1, step 2 a human completion
    trajectory = make_solution(problems[0], ["a", "p", "h"], Solution.Grade.UNGRADED)
    make_labeling(
        bob,
        trajectory,
        [[("a", 1)], [("q", -1), ("p", 0)], [("r", -1)]],
        human={2: ("h", 1)},
    )
    expected[(problems[0].text, "p")] = ([1, 0, 1], None)

    # screening items are not training data
    screening = make_solution(problems[1], ["s"], Solution.Grade.CORRECT)
    make_labeling(ann, screening, [[("s", 1)]], screening=True)

    pool, heldout = load_imported_world(seed=0, heldout_fraction=0.3)
    everything = pool + heldout
    assert len(everything) == len(expected)
    got = {(s.problem, s.steps[1]): (s.ratings, s.is_correct) for s in everything}
    assert got == expected
    pool_problems = {s.problem_id for s in pool}
    heldout_problems = {s.problem_id for s in heldout}
    assert pool_problems and heldout_problems and not pool_problems & heldout_problems
    # the split is a function of the seed
    again_pool, _ = load_imported_world(seed=0, heldout_fraction=0.3)
    assert [s.steps for s in again_pool] == [s.steps for s in pool]


@pytest.mark.django_db
def test_an_empty_database_is_a_clear_error():
    with pytest.raises(CommandError, match="no labelings in the database"):
        load_imported_world(seed=0, heldout_fraction=0.2)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_quick_run_with_imported_labels(tmp_path):
    import csv

    from django.core.management import call_command

    make_labeled_problems(12)
    call_command(
        "simulate_rounds",
        "--quick",
        "--oracle",
        "imported",
        "--per-round",
        "4",
        "--out",
        str(tmp_path),
        stdout=io.StringIO(),
    )
    with open(tmp_path / "simulation.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["solutions_labeled"]) for r in rows] == [4, 8, 4, 8]
    # the imported labels stop at the first error: 2 steps for wrong answers, 3 for right ones
    for row in rows:
        solutions, steps = int(row["solutions_labeled"]), int(row["steps_labeled"])
        assert 2 * solutions <= steps <= 3 * solutions
