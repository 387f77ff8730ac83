"""Rules that turn labelings into training examples (training/datasets.py)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from labeling.models import LabeledCompletion, LabeledStep, LabelingTask, Solution
from tests.training import factories as f
from training.datasets import build_training_data, is_heldout, merge_votes

pytestmark = pytest.mark.django_db

STEPS = ["Let x = 2.", "Then 2x = 4.", "So 2x + 1 = 6.", "# Answer\n\n6"]


def _all(data):
    return data.train + data.heldout


def _mains(data, sol):
    return [s for s in _all(data) if s.steps == STEPS and s.problem == sol.problem.text]


def test_merge_votes_majority_with_ties_to_the_lower_rating():
    assert merge_votes([1, 1, -1]) == 1
    assert merge_votes([1, -1]) == -1
    assert merge_votes([0, 1]) == 0
    assert merge_votes([1, 0, 0, -1, -1]) == -1


def test_several_labelings_of_one_solution_make_one_example():
    sol = f.solution(f.problem(), STEPS, grade=Solution.Grade.WRONG)
    f.labeling(sol, [1, 1, -1])
    f.labeling(sol, [1, 0, -1])
    f.labeling(sol, [1, 1, 1, 1])

    data = build_training_data(heldout_fraction=0.0)

    assert len(data.train) == 1 and not data.heldout
    only = data.train[0]
    assert only.steps == STEPS  # the whole solution stays in for the outcome model
    # step 1: votes 1,0,1 -> 1; step 2: -1,-1,1 -> -1, and nothing after the first negative
    assert only.ratings == [1, 1, -1]
    assert only.is_correct is False
    assert only.problem_id == str(sol.problem_id)
    assert data.snapshot["labelings"] == 3
    assert data.snapshot["solutions"] == 1
    assert data.snapshot["solutions_with_disagreement"] == 1


def test_ratings_stop_at_the_first_negative_step():
    sol = f.solution(f.problem(), STEPS)
    # An imported line may carry ratings past the error; they are not trained on.
    f.labeling(sol, [1, -1, 1, 1], finish_reason="solution")
    data = build_training_data(heldout_fraction=0.0)
    assert data.train[0].ratings == [1, -1]
    assert data.snapshot["labeled_steps"] == 2


def test_alternatives_rated_after_an_error_become_branches():
    sol = f.solution(f.problem(), STEPS)
    f.labeling(
        sol,
        [1, -1],
        alternatives={1: [("Then 2x = 4, as 2 * 2 = 4.", 1), ("Then 2x = 5.", -1)]},
    )
    data = build_training_data(heldout_fraction=0.0)

    main, *branches = data.train
    assert main.ratings == [1, -1]
    # The prefix is context: its rating is trained once, on the solution itself.
    assert sorted((b.steps, b.ratings) for b in branches) == [
        (["Let x = 2.", "Then 2x = 4, as 2 * 2 = 4."], [None, 1]),
        (["Let x = 2.", "Then 2x = 5."], [None, -1]),
    ]
    assert all(b.is_correct is None for b in branches)  # their final answer is unknown
    assert data.snapshot["branches"] == 2


def test_branch_after_the_merged_first_error_is_dropped():
    sol = f.solution(f.problem(), STEPS)
    f.labeling(sol, [-1])
    # A second labeler went on and rated an alternative at step 2: past the merged error.
    f.labeling(sol, [-1, 1, -1], alternatives={2: [("So 2x + 1 = 5.", 1)]})
    data = build_training_data(heldout_fraction=0.0)
    assert [s.ratings for s in data.train] == [[-1]]
    assert data.snapshot["branches_after_error_dropped"] == 1


def test_quality_control_solution_uses_gold_once():
    sol = f.solution(f.problem(), STEPS)
    gen = f.generation(3)
    task = LabelingTask.objects.create(
        solution=sol,
        generation=gen,
        kind=LabelingTask.Kind.QUALITY_CONTROL,
        labelings_required=5,
        gold_ratings=[1, 0, -1, 1],
    )
    for _ in range(4):  # served to every labeler; they disagree with gold
        f.labeling(sol, [1, 1, 1, 1], gen=gen, is_quality_control=True, task=task)

    data = build_training_data(heldout_fraction=0.0)

    assert [s.ratings for s in data.train] == [[1, 0, -1]]
    assert data.snapshot["gold_solutions"] == 1


def test_screening_labelings_without_gold_are_ignored():
    sol = f.solution(f.problem(), STEPS)
    f.labeling(sol, [1, 1, 1, 1], gen=f.generation(-1), is_screening=True)
    data = build_training_data(heldout_fraction=0.0)
    assert _all(data) == []


def test_give_up_keeps_its_rated_prefix_and_bad_problem_drops_the_problem():
    gave_up = f.solution(f.problem(), STEPS)
    f.labeling(gave_up, [1, 0], finish_reason="give_up")
    bad = f.problem()
    reported = f.solution(bad, STEPS)
    sibling = f.solution(bad, ["Some other start.", "# Answer\n\n1"])
    f.labeling(reported, [1], finish_reason="bad_problem")
    f.labeling(sibling, [1, 1])  # another solution of the reported problem

    data = build_training_data(heldout_fraction=0.0)

    assert [(s.problem, s.ratings) for s in data.train] == [(gave_up.problem.text, [1, 0])]
    assert data.snapshot["bad_problem_labelings"] == 1


def test_phase_one_candidates_not_chosen_are_branches_and_human_steps_are_unrated():
    sol = f.solution(f.problem(), ["Let x = 2.", "Human: so 2x = 4.", "# Answer\n\n4"])
    made = f.labeling(sol, [1])
    # step 1: two rated candidates, none chosen: the labeler wrote the step (rating null)
    step = LabeledStep.objects.create(
        labeling=made,
        position=1,
        chosen_completion=None,
        has_human_completion=True,
        human_completion_text="Human: so 2x = 4.",
    )
    LabeledCompletion.objects.create(labeled_step=step, position=0, text="2x = 5.", rating=-1)
    LabeledCompletion.objects.create(labeled_step=step, position=1, text="2x is 4.", rating=0)
    # step 2: candidate 1 chosen
    step = LabeledStep.objects.create(labeling=made, position=2, chosen_completion=1)
    LabeledCompletion.objects.create(labeled_step=step, position=0, text="# Answer 5", rating=-1)
    LabeledCompletion.objects.create(labeled_step=step, position=1, text="# Answer\n\n4", rating=1)

    data = build_training_data(heldout_fraction=0.0)

    main, *branches = data.train
    assert main.ratings == [1, None, 1]
    assert sorted((b.steps[-1], b.ratings) for b in branches) == [
        ("# Answer 5", [None, None, -1]),
        ("2x = 5.", [None, -1]),
        ("2x is 4.", [None, 0]),
    ]


def test_snapshot_limits_labelings_and_heldout_split_is_by_problem():
    problems = [f.problem(source_id=f"test/{i}") for i in range(30)]
    first = None
    for prob in problems:
        for _ in range(2):
            made = f.labeling(f.solution(prob, STEPS), [1, 1, -1])
            first = first or made.id
    late = f.labeling(f.solution(problems[0], STEPS), [1])

    data = build_training_data(max_labeling_id=late.id - 1, heldout_fraction=0.3)

    assert data.snapshot["max_labeling_id"] == late.id - 1
    assert len(data.train) + len(data.heldout) == 60  # the late labeling is not in
    held = {s.problem_id for s in data.heldout}
    assert held and held.isdisjoint({s.problem_id for s in data.train})
    expected = {str(p.id) for p in problems if is_heldout(p.source_id, 0.3)}
    assert held == expected
    assert len(data.heldout_main) == len(data.heldout)


def test_builds_with_a_fixed_number_of_queries():
    for _ in range(3):
        f.labeling(f.solution(f.problem(), STEPS), [1, 1, -1])
    with CaptureQueriesContext(connection) as small:
        build_training_data(heldout_fraction=0.0)
    for _ in range(20):
        f.labeling(f.solution(f.problem(), STEPS), [1, 0, 1, 1])
    with CaptureQueriesContext(connection) as large:
        data = build_training_data(heldout_fraction=0.0)
    assert len(data.train) == 23
    assert len(large.captured_queries) == len(small.captured_queries)


def test_step_without_completions_is_unrated():
    sol = f.solution(f.problem(), STEPS)
    made = f.labeling(sol, [1, 0])
    # A phase 1 give-up may end on a step whose `completions` is null.
    LabeledStep.objects.create(labeling=made, position=2, completions_null=True)
    made.finish_reason = "give_up"
    made.save()
    data = build_training_data(heldout_fraction=0.0)
    assert [s.ratings for s in data.train] == [[1, 0]]


def test_outcome_data_adds_graded_solutions_nobody_labeled():
    labeled = f.solution(f.problem(), STEPS, grade=Solution.Grade.WRONG)
    f.labeling(labeled, [1, -1])
    graded = f.solution(f.problem(), STEPS, grade=Solution.Grade.CORRECT)
    f.solution(f.problem(), STEPS)  # ungraded: no outcome to learn
    bad = f.problem()
    f.labeling(f.solution(bad, STEPS), [1], finish_reason="bad_problem")
    f.solution(bad, STEPS, grade=Solution.Grade.CORRECT)  # its problem was reported
    later = f.solution(f.problem(), STEPS, grade=Solution.Grade.WRONG)

    data = build_training_data(heldout_fraction=0.0, graded_up_to=later.id - 1)

    assert [(s.ratings, s.is_correct) for s in data.train] == [([1, -1], False), ([], True)]
    assert data.train[1].problem == graded.problem.text
    assert data.snapshot["outcome_only_solutions"] == 1
    assert data.snapshot["max_solution_id"] == later.id - 1
    # Process data is unchanged without it.
    assert [s.ratings for s in build_training_data(heldout_fraction=0.0).train] == [[1, -1]]


def test_identical_inputs_pool_their_votes_into_one_target():
    sol = f.solution(f.problem(), STEPS)
    # Two labelers rate the same alternative differently; the first was also shown a copy of the
    # solution's own step 2 among the alternatives and rated it like the step.
    f.labeling(
        sol,
        [1, -1],
        alternatives={1: [("Then 2x = 2.", -1), ("Then 2x = 4.", -1)]},
    )
    f.labeling(sol, [1, -1], alternatives={1: [("Then 2x = 2.", 1)]})

    data = build_training_data(heldout_fraction=0.0)

    main, branch = data.train
    assert main.ratings == [1, -1] and main.soft_ratings is None  # votes -1, -1, -1
    assert (branch.steps, branch.ratings) == (["Let x = 2.", "Then 2x = 2."], [None, -1])
    assert branch.soft_ratings == [None, (0.5, 0.0, 0.5)]
    assert data.snapshot["labeled_steps"] == 3


def test_give_up_after_rating_every_candidate_keeps_them_all():
    # Phase 1: the labeler rated the candidates for step 3, chose none, wrote none and gave up.
    sol = f.solution(f.problem(), ["Let x = 2.", "Then 2x = 4."])
    made = f.labeling(sol, [1, 1], finish_reason="give_up")
    step = LabeledStep.objects.create(labeling=made, position=2, chosen_completion=None)
    LabeledCompletion.objects.create(labeled_step=step, position=0, text="So x = 3.", rating=-1)
    LabeledCompletion.objects.create(labeled_step=step, position=1, text="So 4 = 5.", rating=-1)

    data = build_training_data(heldout_fraction=0.0)

    main, *branches = data.train
    assert main.ratings == [1, 1]
    assert sorted((b.steps[-1], b.ratings) for b in branches) == [
        ("So 4 = 5.", [None, None, -1]),
        ("So x = 3.", [None, None, -1]),
    ]


def test_examples_carry_the_solution_final_answer_for_majority_vote():
    from training.prm.evaluate import best_of_n, candidates_from

    prob = f.problem()
    for answer, grade in (("\\frac{1}{2}", "correct"), ("0.5", "correct"), ("2", "wrong")):
        sol = f.solution(prob, [f"So it is {answer}.", f"# Answer\n\n{answer}"], grade=grade)
        Solution.objects.filter(id=sol.id).update(final_answer=answer)
        f.labeling(sol, [1, 1])
    graded = f.solution(f.problem(), STEPS, grade=Solution.Grade.CORRECT)
    Solution.objects.filter(id=graded.id).update(final_answer="6")

    data = build_training_data(heldout_fraction=0.0, graded_up_to=graded.id)

    assert [s.answer for s in data.train] == ["\\frac{1}{2}", "0.5", "2", "6"]
    samples = data.train[:3]
    table = best_of_n(candidates_from(samples, {}), ns=(3,), trials=1)
    assert table["majority"][3] == 1.0
