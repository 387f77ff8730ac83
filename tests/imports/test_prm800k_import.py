"""import_prm800k: mapping of both phases, screening lines, idempotency, atomicity, bad lines."""

from __future__ import annotations

import copy
import json

import pytest

from labeling.imports import ImportLineError, import_prm800k
from labeling.models import (
    Generation,
    LabeledCompletion,
    LabeledStep,
    Labeler,
    Labeling,
    Problem,
    Solution,
    Step,
    StepAlternative,
)

pytestmark = pytest.mark.django_db

TABLES = [
    Problem,
    Solution,
    Step,
    StepAlternative,
    Labeler,
    Labeling,
    LabeledStep,
    LabeledCompletion,
    Generation,
]


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in TABLES}


def test_shared_samples_import_with_the_documented_mapping(shared_data):
    first = import_prm800k(shared_data / "prm800k_sample_openr.jsonl")
    second = import_prm800k(shared_data / "prm800k_sample_phase2.jsonl")

    assert first.lines == 6 and first.created["labelings"] == 6
    # The phase 2 file repeats the openr file's phase 2 line: same canonical JSON, skipped.
    assert second.lines == 3
    assert second.created["labelings"] == 2 and second.skipped["labelings"] == 1
    assert Labeling.objects.count() == 8
    assert Labeling.objects.filter(source="import").count() == 8

    phase2 = [json.loads(line) for line in open(shared_data / "prm800k_sample_phase2.jsonl")][1]
    question = phase2["question"]
    solution = Solution.objects.get(problem__text=question["problem"], is_pre_generated=True)
    assert [s.text for s in solution.steps.order_by("position")] == question["pre_generated_steps"]
    assert solution.final_answer == question["pre_generated_answer"]
    assert solution.selection_score == question["pre_generated_verifier_score"]
    assert solution.num_steps == len(question["pre_generated_steps"])
    assert solution.problem.reference_answer == question["ground_truth_answer"]
    assert solution.problem.reference_solution == question["ground_truth_solution"]
    labeling = solution.labelings.get()
    assert labeling.generation.number == 6 and labeling.generation.state == "finished"
    assert labeling.finish_reason == "found_error"
    assert labeling.total_time_ms == phase2["label"]["total_time"]
    assert labeling.timestamp.isoformat() == phase2["timestamp"] + "+00:00"
    assert labeling.labeler.external_id == phase2["labeler"]
    assert not labeling.labeler.user.is_active
    assert not labeling.labeler.user.has_usable_password()
    # The found_error step offers alternatives: completions[1:] become StepAlternatives.
    last = phase2["label"]["steps"][-1]
    position = len(phase2["label"]["steps"]) - 1
    alternatives = StepAlternative.objects.filter(step__solution=solution, step__position=position)
    assert [a.text for a in alternatives.order_by("position")] == [
        c["text"] for c in last["completions"][1:]
    ]
    labeled = labeling.steps.get(position=position)
    assert labeled.chosen_completion is None and not labeled.has_human_completion
    assert [(c.text, c.rating, c.flagged) for c in labeled.completions.order_by("position")] == [
        (c["text"], c["rating"], c["flagged"]) for c in last["completions"]
    ]


def test_phase1_trajectory_human_completion_and_null_completions(shared_data):
    lines = [json.loads(line) for line in open(shared_data / "prm800k_sample_openr.jsonl")]
    import_prm800k(shared_data / "prm800k_sample_openr.jsonl")

    pencils = lines[0]
    labeling = Labeling.objects.get(solution__problem__text=pencils["question"]["problem"])
    assert labeling.generation is None
    solution = labeling.solution
    assert not solution.is_pre_generated
    expected = []
    for step in pencils["label"]["steps"]:
        if step["chosen_completion"] is not None:
            expected.append(step["completions"][step["chosen_completion"]]["text"])
        else:
            expected.append(step["human_completion"]["text"])
    assert [s.text for s in solution.steps.order_by("position")] == expected
    assert solution.final_answer == "29" and solution.grade == "correct"
    human_step = labeling.steps.get(position=1)
    assert human_step.has_human_completion and human_step.chosen_completion is None
    assert (
        human_step.human_completion_text == pencils["label"]["steps"][1]["human_completion"]["text"]
    )
    assert human_step.human_completion_source == "human"
    assert human_step.human_completion_rating is None
    assert human_step.human_completion_flagged is False
    assert human_step.completions.count() == 5

    give_up = lines[4]
    labeling = Labeling.objects.get(solution__problem__text=give_up["question"]["problem"])
    assert labeling.finish_reason == "give_up"
    last = labeling.steps.get(position=len(give_up["label"]["steps"]) - 1)
    assert last.completions_null and last.completions.count() == 0
    # The trajectory stops at the step without completions.
    assert labeling.solution.num_steps == len(give_up["label"]["steps"]) - 1


def test_screening_line(shared_data):
    import_prm800k(shared_data / "prm800k_sample_openr.jsonl")
    screening = Labeling.objects.get(is_screening=True)
    assert screening.generation.number == -1
    assert not screening.is_quality_control
    assert screening.solution.is_pre_generated


def test_reimport_creates_nothing(shared_data):
    first = import_prm800k(shared_data / "prm800k_sample_openr.jsonl")
    before = counts()
    again = import_prm800k(shared_data / "prm800k_sample_openr.jsonl", batch_size=2)
    assert counts() == before
    assert again.created.get("labelings", 0) == 0
    assert again.skipped["labelings"] == first.created["labelings"] == 6


def test_existing_problem_with_other_answer_keeps_line_value_as_override(
    prm800k_lines, write_jsonl
):
    line = prm800k_lines[1]
    Problem.objects.create(
        text=line["question"]["problem"], reference_answer="7,200", reference_solution="other"
    )
    import_prm800k(write_jsonl([line]))
    labeling = Labeling.objects.get()
    assert labeling.ground_truth_answer_override == line["question"]["ground_truth_answer"]
    assert labeling.ground_truth_solution_override == line["question"]["ground_truth_solution"]
    assert Problem.objects.count() == 1


def test_new_problem_needs_no_override(prm800k_lines, write_jsonl):
    line = prm800k_lines[1]
    import_prm800k(write_jsonl([line]))
    labeling = Labeling.objects.get()
    assert labeling.ground_truth_answer_override is None
    assert labeling.ground_truth_solution_override is None


def test_bad_line_at_the_end_leaves_database_unchanged(prm800k_lines, write_jsonl):
    bad = copy.deepcopy(prm800k_lines[0])
    bad["label"]["steps"][2]["completions"][0]["rating"] = 2
    path = write_jsonl(prm800k_lines[:6] + [bad])
    before = counts()
    with pytest.raises(ImportLineError) as error:
        import_prm800k(path, batch_size=2)  # earlier batches were written, then rolled back
    assert str(error.value) == (
        "line 7: label.steps[2].completions[0].rating: must be -1, 0, 1 or null, got 2"
    )
    assert counts() == before


def _mutated(line: dict, mutate) -> dict:
    copied = copy.deepcopy(line)
    mutate(copied)
    return copied


BAD_LINES = [
    (
        "invalid json",
        lambda base: '{"labeler": "x", ',
        None,
        "invalid JSON",
    ),
    (
        "not an object",
        lambda base: "[1, 2]",
        None,
        "must be an object, got array",
    ),
    (
        "missing field",
        lambda base: _mutated(base, lambda d: d["question"].pop("problem")),
        "question.problem",
        "missing",
    ),
    (
        "wrong type",
        lambda base: _mutated(base, lambda d: d["label"].__setitem__("total_time", "293250")),
        "label.total_time",
        "must be an integer or null, got string",
    ),
    (
        "rating out of range",
        lambda base: _mutated(
            base, lambda d: d["label"]["steps"][1]["completions"][3].__setitem__("rating", -2)
        ),
        "label.steps[1].completions[3].rating",
        "must be -1, 0, 1 or null, got -2",
    ),
    (
        "rating of wrong type",
        lambda base: _mutated(
            base, lambda d: d["label"]["steps"][0]["completions"][0].__setitem__("rating", "1")
        ),
        "label.steps[0].completions[0].rating",
        'must be -1, 0, 1 or null, got "1"',
    ),
    (
        "human completion rating",
        lambda base: _mutated(
            base, lambda d: d["label"]["steps"][1]["human_completion"].__setitem__("rating", 5)
        ),
        "label.steps[1].human_completion.rating",
        "must be -1, 0, 1 or null, got 5",
    ),
    (
        "unknown finish reason",
        lambda base: _mutated(base, lambda d: d["label"].__setitem__("finish_reason", "done")),
        "label.finish_reason",
        'must be one of solution, found_error, give_up, bad_problem, got "done"',
    ),
    (
        "bad timestamp",
        lambda base: _mutated(base, lambda d: d.__setitem__("timestamp", "yesterday")),
        "timestamp",
        "must be an ISO 8601 date-time, got 'yesterday'",
    ),
    (
        "chosen completion out of range",
        lambda base: _mutated(
            base, lambda d: d["label"]["steps"][0].__setitem__("chosen_completion", 3)
        ),
        "label.steps[0].chosen_completion",
        "must index one of the 1 completions, got 3",
    ),
    (
        "generation below -1",
        lambda base: _mutated(base, lambda d: d.__setitem__("generation", -2)),
        "generation",
        "must be at least -1, got -2",
    ),
    (
        "flag not boolean",
        lambda base: _mutated(base, lambda d: d.__setitem__("is_quality_control_question", 1)),
        "is_quality_control_question",
        "must be true or false, got number",
    ),
    (
        "flagged as a number",
        lambda base: _mutated(
            base, lambda d: d["label"]["steps"][0]["completions"][0].__setitem__("flagged", 1)
        ),
        "label.steps[0].completions[0].flagged",
        "must be true, false or null, got number",
    ),
    (
        "completion without flagged",
        lambda base: _mutated(
            base,
            lambda d: d["label"]["steps"][0]["completions"][0].update(
                {"flagged_": d["label"]["steps"][0]["completions"][0].pop("flagged")}
            ),
        ),
        "label.steps[0].completions[0].flagged_",
        "unexpected field",
    ),
    (
        "rating true",
        lambda base: _mutated(
            base, lambda d: d["label"]["steps"][0]["completions"][0].__setitem__("rating", True)
        ),
        "label.steps[0].completions[0].rating",
        "must be -1, 0, 1 or null, got true",
    ),
    (
        "labeler id too long",
        lambda base: _mutated(base, lambda d: d.__setitem__("labeler", "x" * 65)),
        "labeler",
        "must be at most 64 characters, got 65",
    ),
    (
        "unexpected field",
        lambda base: _mutated(base, lambda d: d["question"].__setitem__("hint", "x")),
        "question.hint",
        "unexpected field (it could not be exported back)",
    ),
]


@pytest.mark.parametrize(
    "make_line, field, detail", [case[1:] for case in BAD_LINES], ids=[c[0] for c in BAD_LINES]
)
def test_each_kind_of_bad_line_names_line_and_field(
    prm800k_lines, write_jsonl, make_line, field, detail
):
    bad = make_line(prm800k_lines[0])
    path = write_jsonl([prm800k_lines[2], "", prm800k_lines[3], bad])
    with pytest.raises(ImportLineError) as error:
        import_prm800k(path)
    assert error.value.line == 4
    assert error.value.field == field
    assert error.value.detail.startswith(detail)
    assert Labeling.objects.count() == 0 and Problem.objects.count() == 0


def test_same_labeler_same_solution_twice_is_rejected(prm800k_lines, write_jsonl):
    again = copy.deepcopy(prm800k_lines[1])
    again["label"]["total_time"] += 1  # a different line, same labeler/solution/generation
    with pytest.raises(ImportLineError) as error:
        import_prm800k(write_jsonl([prm800k_lines[1], again]))
    assert error.value.line == 2 and error.value.field == "labeler"
    assert Labeling.objects.count() == 0


def test_the_first_bad_line_is_reported_even_before_a_later_json_error(prm800k_lines, write_jsonl):
    missing = copy.deepcopy(prm800k_lines[2])
    del missing["labeler"]
    path = write_jsonl([prm800k_lines[3], missing, '{"broken": '])
    with pytest.raises(ImportLineError) as error:
        import_prm800k(path)
    assert (error.value.line, error.value.field, error.value.detail) == (2, "labeler", "missing")
