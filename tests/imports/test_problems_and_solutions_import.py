"""import_problems and import_solutions: good files, bad lines, atomicity, idempotency."""

from __future__ import annotations

import json

import pytest

from labeling.imports import ImportLineError, import_problems, import_solutions
from labeling.models import Problem, Solution, Step

pytestmark = pytest.mark.django_db


def math_record(**overrides) -> dict:
    record = {
        "problem": "What is $1+1$?",
        "solution": "We add: $1+1=\\boxed{2}$.",
        "answer": "2",
        "subject": "Prealgebra",
        "level": "Level 1",
        "unique_id": "test/prealgebra/1.json",
    }
    record.update(overrides)
    return record


def test_math500_imports_with_metadata_and_reimport_creates_nothing(shared_data):
    result = import_problems(shared_data / "math500.jsonl")
    assert result.lines == 500 and result.created == {"problems": 500}
    problem = Problem.objects.get(source_id="test/precalculus/807.json")
    assert problem.reference_answer == "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert problem.subject == "Precalculus" and problem.level == 2 and problem.split == "test"
    assert problem.reference_solution.startswith("We have that $r = ")

    again = import_problems(shared_data / "math500.jsonl")
    assert again.created.get("problems", 0) == 0 and again.skipped == {"problems": 500}
    assert Problem.objects.count() == 500


@pytest.mark.parametrize(
    "record, field, detail",
    [
        ({"answer": "2"}, "problem", "missing"),
        (math_record(answer=2), "answer", "must be a string, got number"),
        (math_record(level="hard"), "level", "must be \"Level N\" or an integer, got 'hard'"),
        (math_record(problem="  "), "problem", "must not be empty"),
    ],
    ids=["missing problem", "answer not a string", "bad level", "empty problem"],
)
def test_bad_problem_line_names_line_and_field(write_jsonl, record, field, detail):
    path = write_jsonl([math_record(unique_id="a", problem="p1"), record])
    with pytest.raises(ImportLineError) as error:
        import_problems(path)
    assert (error.value.line, error.value.field, error.value.detail) == (2, field, detail)
    assert Problem.objects.count() == 0


def test_problem_import_invalid_json_is_atomic(write_jsonl):
    path = write_jsonl([math_record(unique_id=f"id{i}", problem=f"p{i}") for i in range(5)] + ["{"])
    with pytest.raises(ImportLineError) as error:
        import_problems(path, batch_size=2)
    assert error.value.line == 6 and error.value.detail.startswith("invalid JSON")
    assert Problem.objects.count() == 0


def test_processbench_array_is_graded_from_final_answer_correct(shared_data):
    records = json.loads((shared_data / "processbench_gsm8k.json").read_text())
    result = import_solutions(shared_data / "processbench_gsm8k.json")
    assert result.lines == 400 and result.created["solutions"] == 400
    assert result.created["problems"] == len({r["problem"] for r in records})
    assert Solution.objects.filter(grade="correct").count() == sum(
        r["final_answer_correct"] for r in records
    )
    first = records[0]
    solution = Solution.objects.get(problem__text=first["problem"], generator=first["generator"])
    assert [s.text for s in solution.steps.order_by("position")] == first["steps"]
    assert solution.final_answer == "30"  # from the last step's \boxed{}
    assert solution.grade == ("correct" if first["final_answer_correct"] else "wrong")
    assert solution.problem.reference_answer == ""

    before = (Solution.objects.count(), Step.objects.count(), Problem.objects.count())
    again = import_solutions(shared_data / "processbench_gsm8k.json")
    assert again.created.get("solutions", 0) == 0 and again.skipped["solutions"] == 400
    assert (Solution.objects.count(), Step.objects.count(), Problem.objects.count()) == before


def test_pool_jsonl_by_problem_id_graded_against_reference(write_jsonl):
    import_problems(write_jsonl([math_record(answer="\\frac{1}{2}", unique_id="test/x/1.json")]))
    path = write_jsonl(
        [
            {"problem_id": "test/x/1.json", "steps": ["Half.", "# Answer\n\n0.5"]},
            {"problem_id": "test/x/1.json", "text": "Third.\n\n# Answer\n\n1/3", "generator": "g"},
            {"problem_id": "test/x/1.json", "solution": "So \\boxed{\\dfrac12}", "answer": None},
            {"problem": "New problem?", "reference_answer": "7", "steps": ["It is \\boxed{7}"]},
        ]
    )
    result = import_solutions(path)
    assert result.created == {"problems": 1, "solutions": 4, "steps": 5}
    grades = list(Solution.objects.order_by("id").values_list("final_answer", "grade", "generator"))
    assert grades == [
        ("0.5", "correct", ""),
        ("1/3", "wrong", "g"),
        (None, "wrong", ""),  # an explicit null answer is kept, and is not correct
        ("7", "correct", ""),
    ]
    # One step: the "# Answer" block stays with the step it ends.
    third = Solution.objects.get(final_answer="1/3")
    assert [s.text for s in third.steps.all()] == ["Third.\n\n# Answer\n\n1/3"]


@pytest.mark.parametrize(
    "record, field, detail",
    [
        ({"steps": ["a"]}, "problem", "missing (give problem_id or problem)"),
        ({"problem": "p"}, "steps", "missing (give steps, solution or text)"),
        ({"problem": "p", "steps": "a"}, "steps", "must be an array, got string"),
        ({"problem": "p", "steps": ["a", 3]}, "steps[1]", "must be a string, got number"),
        ({"problem": "p", "steps": []}, "steps", "must hold at least one step"),
        ({"problem_id": "nope", "steps": ["a"]}, "problem_id", "no problem with source id 'nope'"),
        ({"problem": "p", "steps": ["a"], "grade": "great"}, "grade", "must be one of"),
        (
            {"problem": "p", "steps": ["a"], "final_answer_correct": "yes"},
            "final_answer_correct",
            "must be true or false, got string",
        ),
    ],
    ids=[
        "no problem",
        "no steps",
        "steps not a list",
        "step not a string",
        "empty steps",
        "unknown problem id",
        "bad grade",
        "bad final_answer_correct",
    ],
)
def test_bad_solution_line_names_line_and_field(write_jsonl, record, field, detail):
    path = write_jsonl([{"problem": "fine", "steps": ["ok"]}, record])
    with pytest.raises(ImportLineError) as error:
        import_solutions(path, batch_size=1)  # the first line was written, then rolled back
    assert (error.value.line, error.value.field) == (2, field)
    assert error.value.detail.startswith(detail)
    assert Solution.objects.count() == 0 and Problem.objects.count() == 0


def test_json_array_errors_point_at_the_record_line(tmp_path):
    path = tmp_path / "pool.json"
    path.write_text('[\n  {"problem": "p", "steps": ["a"]},\n  {"problem": "q", "steps": [1]}\n]\n')
    with pytest.raises(ImportLineError) as error:
        import_solutions(path)
    assert (error.value.line, error.value.field) == (3, "steps[0]")
    assert Solution.objects.count() == 0


def test_problem_created_by_prm800k_gets_math_metadata_but_keeps_its_answer(write_jsonl):
    Problem.objects.create(text="What is $1+1$?", reference_answer="two")
    result = import_problems(write_jsonl([math_record()]))
    assert result.created == {"problems": 0, "problem_metadata": 1}
    problem = Problem.objects.get()
    assert problem.source_id == "test/prealgebra/1.json"
    assert (problem.subject, problem.level, problem.split) == ("Prealgebra", 1, "test")
    assert problem.reference_answer == "two" and problem.reference_solution == ""
    again = import_problems(write_jsonl([math_record()]))
    assert again.created.get("problem_metadata", 0) == 0 and again.skipped == {"problems": 1}
