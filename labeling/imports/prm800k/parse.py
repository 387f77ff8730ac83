"""One PRM800K line, checked: the declared schema (`schema.py`) first, then what a schema
cannot say, into the `ParsedLine` the writer stores. Every error names the line and the field."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from labeling.grading import extract_final_answer
from labeling.imports.common import ImportLineError
from labeling.imports.prm800k.schema import (
    Completion,
    LabelStep,
    Phase1Line,
    Phase2Line,
    validate_line,
)


@dataclass(slots=True)
class ParsedLine:
    number: int
    import_key: str
    labeler: str
    timestamp: datetime
    generation: int | None
    is_quality_control: bool
    is_screening: bool
    problem: str
    ground_truth_answer: str
    ground_truth_solution: str | None
    phase2: bool
    solution_steps: list[str]
    final_answer: str | None
    selection_score: float | None
    steps: list[LabelStep]
    total_time: int | None
    finish_reason: str
    fingerprint: str = ""  # set once the problem id is known


def parse_line(number: int, data: Any) -> ParsedLine:
    """Validate a decoded line and read it into a ParsedLine (ImportLineError when it is bad)."""
    line = validate_line(number, data)
    canonical = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
    if b"\\u0000" in canonical:  # a NUL somewhere (or the text "\u0000"): find which field
        _refuse_nul(number, data, "")
    _check(number, line)
    phase2 = isinstance(line, Phase2Line)
    question = line.question
    if phase2:
        solution_steps = question.pre_generated_steps
        final_answer = question.pre_generated_answer
    else:
        solution_steps = chosen_trajectory(line.label.steps)
        final_answer = extract_final_answer(solution_steps)
    return ParsedLine(
        number=number,
        import_key=hashlib.sha256(canonical).hexdigest(),
        labeler=line.labeler,
        timestamp=_timestamp(number, line.timestamp),
        generation=line.generation,
        is_quality_control=line.is_quality_control_question,
        is_screening=line.is_initial_screening_question,
        problem=question.problem,
        # null and "" are stored alike (see the package docstring).
        ground_truth_answer=question.ground_truth_answer or "",
        ground_truth_solution=(question.ground_truth_solution or "") if phase2 else None,
        phase2=phase2,
        solution_steps=solution_steps,
        final_answer=final_answer,
        selection_score=question.pre_generated_verifier_score if phase2 else None,
        steps=line.label.steps,
        total_time=line.label.total_time,
        finish_reason=line.label.finish_reason,
    )


def _check(number: int, line: Phase1Line) -> None:
    """The rules a schema cannot state: texts that must say something, indexes in range."""
    if not line.labeler.strip():
        raise ImportLineError(number, "labeler", "must not be empty")
    if line.is_quality_control_question and line.is_initial_screening_question:
        raise ImportLineError(
            number,
            "is_quality_control_question",
            "a line cannot be both a quality-control and a screening question",
        )
    if not line.question.problem.strip():
        raise ImportLineError(number, "question.problem", "must not be empty")
    if isinstance(line, Phase2Line):
        if not line.question.pre_generated_steps:
            raise ImportLineError(number, "question.pre_generated_steps", "must not be empty")
        for index, text in enumerate(line.question.pre_generated_steps):
            _step_text(number, text, f"question.pre_generated_steps[{index}]")
    for index, step in enumerate(line.label.steps):
        _check_step(number, step, f"label.steps[{index}]")


def _check_step(number: int, step: LabelStep, path: str) -> None:
    for index, completion in enumerate(step.completions or ()):
        _step_text(number, completion.text, f"{path}.completions[{index}].text")
    if step.human_completion is not None:
        _step_text(number, step.human_completion.text, f"{path}.human_completion.text")
    chosen = step.chosen_completion
    if chosen is not None and (step.completions is None or chosen >= len(step.completions)):
        available = 0 if step.completions is None else len(step.completions)
        raise ImportLineError(
            number,
            f"{path}.chosen_completion",
            f"must index one of the {available} completions, got {chosen}",
        )


def _step_text(number: int, text: str, path: str) -> None:
    # A blank step can be neither shown to a labeler nor rated (nor scored by a PRM).
    if not text.strip():
        raise ImportLineError(number, path, "a step must not be blank")


def _timestamp(number: int, text: str) -> datetime:
    if not text.strip():
        raise ImportLineError(number, "timestamp", "must not be empty")
    try:
        timestamp = datetime.fromisoformat(text)
    except ValueError:
        raise ImportLineError(
            number, "timestamp", f"must be an ISO 8601 date-time, got {text!r}"
        ) from None
    if timestamp.tzinfo is None:  # PRM800K timestamps are naive UTC
        return timestamp.replace(tzinfo=UTC)
    try:
        # Stored in UTC: a moment before year 1 there would be stored as 1 BC and come back
        # changed, and one after 9999 could not be read back into Python; both are refused.
        timestamp.astimezone(UTC)
    except OverflowError:
        raise ImportLineError(
            number, "timestamp", f"must fall between years 1 and 9999 in UTC, got {text!r}"
        ) from None
    return timestamp


def _refuse_nul(number: int, value: Any, path: str) -> None:
    if isinstance(value, str) and "\x00" in value:
        raise ImportLineError(number, path or None, "must not contain NUL characters")
    if isinstance(value, dict):
        for key, item in value.items():
            _refuse_nul(number, item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_nul(number, item, f"{path}[{index}]")


def chosen_trajectory(steps: list[LabelStep]) -> list[str]:
    """Phase 1: the steps the labeler moved on with (chosen or written), in order."""
    trajectory = []
    for step in steps:
        if step.chosen_completion is not None and step.completions is not None:
            trajectory.append(step.completions[step.chosen_completion].text)
        elif step.human_completion is not None:
            trajectory.append(step.human_completion.text)
        else:
            break
    return trajectory


__all__ = ["Completion", "ParsedLine", "chosen_trajectory", "parse_line"]
