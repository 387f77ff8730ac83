"""Import candidate solutions for the active-learning pool, graded on import.

One record per line (JSONL), or a JSON array of records (ProcessBench). Fields:
- the problem: ``problem_id`` (a Problem's ``source_id``, which must exist), or ``problem`` (its
  text; created when new, with ``reference_answer`` if given, else "");
- the steps: ``steps`` (a list of strings), or ``solution`` / ``text`` (one step per non-blank
  line; a ``# Answer`` block stays with the step before it);
- optional ``answer`` (the solution's final answer; else extracted from the steps: the text after
  ``# Answer`` or the last ``\\boxed{}``), ``generator`` (model name);
- optional grade: ``grade`` ("correct" / "wrong" / "ungraded") or ``final_answer_correct``
  (boolean). When absent, the final answer is graded against the problem's reference answer;
  without a reference answer the solution stays ungraded.
Other fields (ProcessBench ``id`` and ``label``) are ignored.

ProcessBench GSM8K records (``id, generator, problem, steps, final_answer_correct, label``)
carry no reference answer, so their grade comes from ``final_answer_correct``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models.functions import MD5
from django.utils import timezone

from labeling.grading import ANSWER_MARKER, extract_final_answer, grade_answer
from labeling.imports.common import (
    ImportLineError,
    ImportResult,
    LineReader,
    Source,
    allocate_ids,
    batched,
    copy_solutions,
    iter_json_records,
    lock_imports,
    open_source,
    paused_gc,
    require_lines,
    solution_fingerprint,
    text_md5,
)
from labeling.models import Problem, Solution, Step

SOLUTION_SOURCE = "import"
GRADES = {choice.value for choice in Solution.Grade}


@dataclass(slots=True)
class _Record:
    number: int
    problem_id: str | None
    problem_text: str | None
    reference_answer: str
    steps: list[str]
    answer: str | None
    generator: str
    grade: str | None


def import_solutions(
    path: Source, *, progress: bool = False, batch_size: int = 2000
) -> ImportResult:
    """Import candidate solutions atomically; one already present (same problem and steps)
    is skipped. A bad record raises ``ImportLineError`` and nothing is kept."""
    result = ImportResult(kind="solutions")
    with open_source(path) as (handle, size), paused_gc(), transaction.atomic():
        lock_imports()
        problems: dict[tuple[str, str], tuple[int, str]] = {}
        parsed = (
            _parse(number, data) for number, data in iter_json_records(handle, size, progress)
        )
        for records in batched(parsed, batch_size):
            result.lines += len(records)
            _write(records, result, problems)
        require_lines(result)
    return result


def _parse(number: int, data: Any) -> _Record:
    read = LineReader(number)
    record = read.object(data, "")
    problem_id = read.string(record, "problem_id", "problem_id", optional=True, non_empty=True)
    problem_text = None
    if problem_id is None:
        if "problem" not in record:
            raise read.fail("problem", "missing (give problem_id or problem)")
        problem_text = read.string(record, "problem", "problem", non_empty=True)
    reference = read.string(record, "reference_answer", "reference_answer", optional=True)
    steps = _steps(read, record)
    answer = read.string(record, "answer", "answer", optional=True, nullable=True)
    if "answer" not in record:
        answer = extract_final_answer(steps)
    generator = read.string(record, "generator", "generator", optional=True) or ""
    if len(generator) > 128:
        raise read.fail("generator", "must be at most 128 characters")
    return _Record(
        number=number,
        problem_id=problem_id,
        problem_text=problem_text,
        reference_answer=reference or "",
        steps=steps,
        answer=answer,
        generator=generator,
        grade=_grade(read, record),
    )


def _steps(read: LineReader, record: dict) -> list[str]:
    """``steps`` (a list, none of them blank), else ``solution`` or ``text`` split into steps."""
    if "steps" in record:
        raw_steps = read.array(record, "steps", "steps")
        steps = [read.check_string(step, f"steps[{i}]") for i, step in enumerate(raw_steps)]
        for index, step in enumerate(steps):
            if not step.strip():
                raise read.fail(f"steps[{index}]", "a step must not be blank")
        field = "steps"
    else:
        field = next((key for key in ("solution", "text") if key in record), None)
        if field is None:
            raise read.fail("steps", "missing (give steps, solution or text)")
        steps = split_steps(read.string(record, field, field))
    if not steps:
        raise read.fail(field, "must hold at least one step")
    return steps


def _grade(read: LineReader, record: dict) -> str | None:
    """``grade``, else ``final_answer_correct``; None: graded against the reference on write."""
    if record.get("grade") is not None:
        grade = record["grade"]
        if not isinstance(grade, str) or grade not in GRADES:
            raise read.fail(
                "grade", f"must be one of correct, wrong, ungraded, got {json.dumps(grade):.80}"
            )
        return grade
    if record.get("final_answer_correct") is not None:
        correct = read.boolean(record, "final_answer_correct", "final_answer_correct")
        return Solution.Grade.CORRECT if correct else Solution.Grade.WRONG
    return None


def split_steps(text: str) -> list[str]:
    """One step per non-blank line; a ``# Answer`` block stays with the step before it, as in
    PRM800K ("...so it is 29.\n\n# Answer\n\n29")."""
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    if ANSWER_MARKER not in lines:
        return lines
    at = lines.index(ANSWER_MARKER)
    block = "\n\n".join([ANSWER_MARKER, "\n".join(lines[at + 1 :])]).rstrip()
    steps = lines[:at]
    if steps:
        steps[-1] = f"{steps[-1]}\n\n{block}"
    else:
        steps = [block]
    return steps


def _write(
    records: list[_Record],
    result: ImportResult,
    problems: dict[tuple[str, str], tuple[int, str]],
) -> None:
    _resolve_problems(records, result, problems)
    fingerprints: dict[str, _Record] = {}
    for record in records:
        problem_id, _ = problems[_problem_key(record)]
        fingerprint = solution_fingerprint(problem_id, record.steps)
        if fingerprint in fingerprints:
            result.count("skipped", "solutions")
            continue
        fingerprints[fingerprint] = record
    existing = set(
        Solution.objects.filter(fingerprint__in=fingerprints.keys()).values_list(
            "fingerprint", flat=True
        )
    )
    result.count("skipped", "solutions", len(existing))
    new = [(fp, record) for fp, record in fingerprints.items() if fp not in existing]
    solution_ids = allocate_ids(Solution, len(new))
    step_ids = iter(allocate_ids(Step, sum(len(record.steps) for _, record in new)))
    now = timezone.now()
    solution_rows = []
    step_rows = []
    for solution_id, (fingerprint, record) in zip(solution_ids, new, strict=True):
        problem_id, reference = problems[_problem_key(record)]
        grade = record.grade
        if grade is None:
            if not reference.strip():
                grade = Solution.Grade.UNGRADED
            elif grade_answer(record.answer, reference):
                grade = Solution.Grade.CORRECT
            else:
                grade = Solution.Grade.WRONG
        solution_rows.append(
            (
                solution_id,
                problem_id,
                record.answer,
                grade,
                record.generator,
                SOLUTION_SOURCE,
                True,
                None,
                fingerprint,
                len(record.steps),
                now,
            )
        )
        for position, text in enumerate(record.steps):
            step_rows.append((next(step_ids), solution_id, position, text))
    copy_solutions(solution_rows, step_rows, result)


def _problem_key(record: _Record) -> tuple[str, str]:
    if record.problem_id is not None:
        return ("source_id", record.problem_id)
    return ("text", record.problem_text or "")


def _resolve_problems(
    records: list[_Record],
    result: ImportResult,
    problems: dict[tuple[str, str], tuple[int, str]],
) -> None:
    """Fill ``problems`` (key -> (id, reference answer)) for every record of the batch."""
    source_ids = {r.problem_id for r in records if r.problem_id and _problem_key(r) not in problems}
    if source_ids:
        for problem_id, source_id, reference in Problem.objects.filter(
            source_id__in=source_ids
        ).values_list("id", "source_id", "reference_answer"):
            problems[("source_id", source_id)] = (problem_id, reference)
        for record in records:
            if record.problem_id and _problem_key(record) not in problems:
                raise ImportLineError(
                    record.number,
                    "problem_id",
                    f"no problem with source id {record.problem_id!r}; import the problems first",
                )
    texts = {r.problem_text for r in records if r.problem_text and _problem_key(r) not in problems}
    if not texts:
        return
    for problem_id, text, reference in (
        Problem.objects.annotate(text_hash=MD5("text"))
        .filter(text_hash__in={text_md5(text) for text in texts})
        .values_list("id", "text", "reference_answer")
    ):
        problems[("text", text)] = (problem_id, reference)
    to_create: dict[str, Problem] = {}
    for record in records:
        text = record.problem_text
        if text and ("text", text) not in problems and text not in to_create:
            to_create[text] = Problem(text=text, reference_answer=record.reference_answer)
    for problem in Problem.objects.bulk_create(to_create.values()):
        problems[("text", problem.text)] = (problem.id, problem.reference_answer)
    result.count("created", "problems", len(to_create))
