"""Import raw PRM800K lines (phase 1 and phase 2) into problems, solutions, labelers,
generations and labelings.

Mapping (the PRM800K exporter rebuilds each line from exactly these rows):
- ``question.problem``: Problem found by text, else created with ``reference_answer`` =
  ``ground_truth_answer`` and ``reference_solution`` = ``ground_truth_solution`` or "". When the
  stored problem differs, the line's own text is kept in ``Labeling.ground_truth_*_override``.
- Phase 2 (``question.pre_generated_steps`` present): a pre-generated Solution with those steps,
  ``final_answer`` = ``pre_generated_answer``, ``selection_score`` =
  ``pre_generated_verifier_score``; ``completions[1:]`` of a step become its StepAlternatives.
- Phase 1: a Solution (``is_pre_generated=False``) whose steps are the chosen trajectory: the
  chosen completion of each step, or the human completion, up to the first step with neither.
- Solutions are found or created by fingerprint (problem id + steps) and graded on creation.
- ``labeler``: Labeler by ``external_id`` (inactive user ``prm800k-<id>``, unusable password).
- ``generation``: Generation by number (created "finished"); null stays null (phase 1).
- One Labeling per line (``source="import"``, ``import_key`` = sha256 of the canonical line JSON,
  so re-imports skip it), one LabeledStep per ``label.steps[i]`` (position i) and one
  LabeledCompletion per completion (position j).
A null ``ground_truth_answer`` / ``ground_truth_solution`` (initial screening questions have
them) is stored as "" (on the problem, or as an override): an exporter writes "" back as null.
Step positions are 0-based (the index in ``label.steps``); alternative positions are the
completion index (1..).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.db.models.functions import MD5
from django.utils import timezone

from active_learning.models import Generation
from labeling.grading import extract_final_answer, grade_answer
from labeling.imports.common import (
    ImportLineError,
    ImportResult,
    LineReader,
    Source,
    allocate_ids,
    batched,
    copy_rows,
    copy_solutions,
    iter_json_lines,
    lock_imports,
    open_source,
    paused_gc,
    solution_fingerprint,
    text_md5,
)
from labeling.models import (
    LabeledCompletion,
    LabeledStep,
    Labeler,
    Labeling,
    Problem,
    Solution,
    Step,
    StepAlternative,
)

FINISH_REASONS = ("solution", "found_error", "give_up", "bad_problem")
LINE_KEYS = frozenset(
    {
        "labeler",
        "timestamp",
        "generation",
        "is_quality_control_question",
        "is_initial_screening_question",
        "question",
        "label",
    }
)
PHASE1_QUESTION_KEYS = frozenset({"problem", "ground_truth_answer"})
PHASE2_QUESTION_KEYS = frozenset(
    {
        "problem",
        "ground_truth_solution",
        "ground_truth_answer",
        "pre_generated_steps",
        "pre_generated_answer",
        "pre_generated_verifier_score",
    }
)
LABEL_KEYS = frozenset({"steps", "total_time", "finish_reason"})
STEP_KEYS = frozenset({"completions", "human_completion", "chosen_completion"})
COMPLETION_KEYS = frozenset({"text", "rating", "flagged"})
HUMAN_COMPLETION_KEYS = frozenset({"text", "rating", "source", "flagged"})
SOLUTION_SOURCE = "prm800k"
LABELER_USERNAME_PREFIX = "prm800k-"


@dataclass(slots=True)
class _Completion:
    text: str
    rating: int | None
    flagged: bool | None


@dataclass(slots=True)
class _LabelStep:
    completions: list[_Completion] | None
    human: dict[str, Any] | None
    chosen: int | None


@dataclass(slots=True)
class _Line:
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
    steps: list[_LabelStep]
    total_time: int | None
    finish_reason: str
    fingerprint: str = ""  # set once the problem id is known


def import_prm800k(path: Source, *, progress: bool = False, batch_size: int = 2000) -> ImportResult:
    """Import a PRM800K JSONL file atomically and idempotently (see the module docstring).

    A bad line raises ``ImportLineError`` naming its line number and field path; nothing from
    the file is kept then. Lines are validated and written in batches of ``batch_size``.
    """
    result = ImportResult(kind="prm800k")
    with open_source(path) as (handle, size), paused_gc(), transaction.atomic():
        lock_imports()
        writer = _Writer(result)
        # Each line is validated as it is read, so the first bad line is the one reported.
        lines = (_parse_line(n, data) for n, data in iter_json_lines(handle, size, progress))
        for parsed in batched(lines, batch_size):
            result.lines += len(parsed)
            writer.write(parsed)
    return result


# ---------------------------------------------------------------------------------------------
# Validation


def _parse_line(number: int, data: Any) -> _Line:
    read = LineReader(number)
    line = read.object(data, "")
    read.no_unknown_keys(line, LINE_KEYS, "")
    labeler = read.string(line, "labeler", "labeler", non_empty=True)
    if len(labeler) > 64:
        raise read.fail("labeler", f"must be at most 64 characters, got {len(labeler)}")
    timestamp_text = read.string(line, "timestamp", "timestamp", non_empty=True)
    try:
        timestamp = datetime.fromisoformat(timestamp_text)
    except ValueError:
        raise read.fail(
            "timestamp", f"must be an ISO 8601 date-time, got {timestamp_text!r}"
        ) from None
    if timestamp.tzinfo is None:  # PRM800K timestamps are naive UTC
        timestamp = timestamp.replace(tzinfo=UTC)
    generation = read.integer(line, "generation", "generation", nullable=True, minimum=-1)
    is_qc = read.boolean(line, "is_quality_control_question", "is_quality_control_question")
    is_screening = read.boolean(
        line, "is_initial_screening_question", "is_initial_screening_question"
    )
    if is_qc and is_screening:
        raise read.fail(
            "is_quality_control_question",
            "a line cannot be both a quality-control and a screening question",
        )

    question = read.object(read.get(line, "question", "question"), "question")
    phase2 = "pre_generated_steps" in question
    read.no_unknown_keys(
        question, PHASE2_QUESTION_KEYS if phase2 else PHASE1_QUESTION_KEYS, "question"
    )
    problem = read.string(question, "problem", "question.problem", non_empty=True)
    # null and "" are stored alike (see the module docstring).
    answer = (
        read.string(question, "ground_truth_answer", "question.ground_truth_answer", nullable=True)
        or ""
    )
    ground_truth_solution = None
    pre_steps: list[str] = []
    pre_answer = None
    pre_score = None
    if phase2:
        ground_truth_solution = (
            read.string(
                question, "ground_truth_solution", "question.ground_truth_solution", nullable=True
            )
            or ""
        )
        raw_steps = read.array(question, "pre_generated_steps", "question.pre_generated_steps")
        if not raw_steps:
            raise read.fail("question.pre_generated_steps", "must not be empty")
        for index, step in enumerate(raw_steps):
            pre_steps.append(read.check_string(step, f"question.pre_generated_steps[{index}]"))
        pre_answer = read.string(
            question, "pre_generated_answer", "question.pre_generated_answer", nullable=True
        )
        pre_score = read.number(
            question,
            "pre_generated_verifier_score",
            "question.pre_generated_verifier_score",
            nullable=True,
        )

    label = read.object(read.get(line, "label", "label"), "label")
    read.no_unknown_keys(label, LABEL_KEYS, "label")
    raw_label_steps = read.array(label, "steps", "label.steps")
    steps = [
        _plain_label_step(raw) or _parse_label_step(read, raw, f"label.steps[{i}]")
        for i, raw in enumerate(raw_label_steps)
    ]
    total_time = read.integer(label, "total_time", "label.total_time", nullable=True, minimum=0)
    finish_reason = read.get(label, "finish_reason", "label.finish_reason")
    if finish_reason not in FINISH_REASONS:
        raise read.fail(
            "label.finish_reason",
            f"must be one of {', '.join(FINISH_REASONS)}, got {json.dumps(finish_reason)}",
        )

    if phase2:
        solution_steps = pre_steps
        final_answer = pre_answer
    else:
        solution_steps = _chosen_trajectory(steps)
        final_answer = extract_final_answer(solution_steps)

    canonical = orjson.dumps(line, option=orjson.OPT_SORT_KEYS)
    return _Line(
        number=number,
        import_key=hashlib.sha256(canonical).hexdigest(),
        labeler=labeler,
        timestamp=timestamp,
        generation=generation,
        is_quality_control=is_qc,
        is_screening=is_screening,
        problem=problem,
        ground_truth_answer=answer,
        ground_truth_solution=ground_truth_solution,
        phase2=phase2,
        solution_steps=solution_steps,
        final_answer=final_answer,
        selection_score=pre_score,
        steps=steps,
        total_time=total_time,
        finish_reason=finish_reason,
    )


def _plain_label_step(raw: Any) -> _LabelStep | None:
    """The common, valid step (no human completion) checked in one go; None sends it down the
    slow path, which finds and explains what is wrong (or accepts the rarer shapes)."""
    if type(raw) is not dict or len(raw) != 3 or raw.get("human_completion", 0) is not None:
        return None
    completions = raw.get("completions")
    if type(completions) is not list or not all(map(_is_plain_completion, completions)):
        return None
    chosen = raw.get("chosen_completion", -1)
    if chosen is not None and (type(chosen) is not int or not 0 <= chosen < len(completions)):
        return None
    return _LabelStep(
        completions=[_Completion(c["text"], c["rating"], c["flagged"]) for c in completions],
        human=None,
        chosen=chosen,
    )


def _parse_label_step(read: LineReader, raw: Any, path: str) -> _LabelStep:
    step = read.object(raw, path)
    read.no_unknown_keys(step, STEP_KEYS, path)
    raw_completions = read.array(step, "completions", f"{path}.completions", nullable=True)
    completions = None
    if raw_completions is not None:
        completions = []
        for index, raw_completion in enumerate(raw_completions):
            where = f"{path}.completions[{index}]"
            completion = read.object(raw_completion, where)
            read.no_unknown_keys(completion, COMPLETION_KEYS, where)
            completions.append(
                _Completion(
                    text=read.string(completion, "text", f"{where}.text"),
                    rating=read.rating(completion, "rating", f"{where}.rating"),
                    flagged=read.boolean(completion, "flagged", f"{where}.flagged", nullable=True),
                )
            )
    human = read.get(step, "human_completion", f"{path}.human_completion")
    if human is not None:
        where = f"{path}.human_completion"
        read.object(human, where)
        read.no_unknown_keys(human, HUMAN_COMPLETION_KEYS, where)
        human = {
            "text": read.string(human, "text", f"{where}.text"),
            "rating": read.rating(human, "rating", f"{where}.rating"),
            "source": read.string(human, "source", f"{where}.source", nullable=True),
            "flagged": read.boolean(human, "flagged", f"{where}.flagged", nullable=True),
        }
    chosen = read.integer(
        step, "chosen_completion", f"{path}.chosen_completion", nullable=True, minimum=0
    )
    if chosen is not None and (completions is None or chosen >= len(completions)):
        available = 0 if completions is None else len(completions)
        raise read.fail(
            f"{path}.chosen_completion",
            f"must index one of the {available} completions, got {chosen}",
        )
    return _LabelStep(completions=completions, human=human, chosen=chosen)


class _IdentitySet(tuple):
    def __contains__(self, value: object) -> bool:
        return any(value is member for member in self)


def _is_plain_completion(value: Any) -> bool:
    """The common, valid completion; anything else takes the slow path that explains itself."""
    if type(value) is not dict or len(value) != 3 or "rating" not in value:
        return False
    text = value.get("text")
    rating = value["rating"]
    return (
        type(text) is str
        and "\x00" not in text
        and (rating is None or type(rating) is int)
        and rating in _RATINGS
        and value.get("flagged", _MISSING) in _FLAGS
    )


_RATINGS = (-1, 0, 1, None)
_MISSING = object()
# Identity, not equality: 1 == True and 0 == False must not pass as flags.
_FLAGS = _IdentitySet((True, False, None))


def _chosen_trajectory(steps: list[_LabelStep]) -> list[str]:
    """Phase 1: the steps the labeler moved on with (chosen or written), in order."""
    trajectory = []
    for step in steps:
        if step.chosen is not None and step.completions is not None:
            trajectory.append(step.completions[step.chosen].text)
        elif step.human is not None:
            trajectory.append(step.human["text"])
        else:
            break
    return trajectory


# ---------------------------------------------------------------------------------------------
# Writing


class _Writer:
    """Resolves and writes one batch at a time with a handful of queries per batch."""

    def __init__(self, result: ImportResult) -> None:
        self.result = result
        self.problems: dict[str, tuple[int, str, str]] = {}  # text -> (id, answer, solution)
        self.labelers: dict[str, int] = {}  # external id -> labeler id
        self.generations: dict[int, int] = {}  # number -> generation id
        self.now = timezone.now()

    def write(self, lines: list[_Line]) -> None:
        lines = self._drop_known_lines(lines)
        if not lines:
            return
        self._resolve_problems(lines)
        self._resolve_labelers(lines)
        self._resolve_generations(lines)
        solution_ids, new_step_ids = self._write_solutions(lines)
        self._write_alternatives(lines, solution_ids, new_step_ids)
        self._write_labelings(lines, solution_ids)

    def _drop_known_lines(self, lines: list[_Line]) -> list[_Line]:
        keys = {line.import_key for line in lines}
        known = set(
            Labeling.objects.filter(import_key__in=keys).values_list("import_key", flat=True)
        )
        fresh = []
        for line in lines:
            if line.import_key in known:
                self.result.count("skipped", "labelings")
                continue
            known.add(line.import_key)  # the same line twice in one file
            fresh.append(line)
        return fresh

    def _resolve_problems(self, lines: list[_Line]) -> None:
        missing = {line.problem for line in lines if line.problem not in self.problems}
        if not missing:
            return
        hashes = {text_md5(text) for text in missing}
        for problem_id, text, answer, solution in (
            Problem.objects.annotate(text_hash=MD5("text"))
            .filter(text_hash__in=hashes)
            .values_list("id", "text", "reference_answer", "reference_solution")
        ):
            self.problems[text] = (problem_id, answer, solution)
        to_create: dict[str, Problem] = {}
        for line in lines:
            if line.problem in self.problems:
                continue
            problem = to_create.get(line.problem)
            if problem is None:
                to_create[line.problem] = Problem(
                    text=line.problem,
                    reference_answer=line.ground_truth_answer,
                    reference_solution=line.ground_truth_solution or "",
                )
            elif not problem.reference_solution and line.ground_truth_solution:
                problem.reference_solution = line.ground_truth_solution
        created = Problem.objects.bulk_create(to_create.values())
        for problem in created:
            self.problems[problem.text] = (
                problem.id,
                problem.reference_answer,
                problem.reference_solution,
            )
        self.result.count("created", "problems", len(created))

    def _resolve_labelers(self, lines: list[_Line]) -> None:
        missing = {line.labeler for line in lines if line.labeler not in self.labelers}
        if not missing:
            return
        for external_id, labeler_id in Labeler.objects.filter(external_id__in=missing).values_list(
            "external_id", "id"
        ):
            self.labelers[external_id] = labeler_id
        missing -= self.labelers.keys()
        if not missing:
            return
        user_model = get_user_model()
        usernames = {LABELER_USERNAME_PREFIX + external_id: external_id for external_id in missing}
        users = {
            user.get_username(): user
            for user in user_model.objects.filter(username__in=usernames.keys())
        }
        new_users = [
            user_model(username=name, password=make_password(None), is_active=False)
            for name in sorted(usernames.keys() - users.keys())
        ]
        for user in user_model.objects.bulk_create(new_users):
            users[user.get_username()] = user
        new_labelers = Labeler.objects.bulk_create(
            Labeler(user=users[name], external_id=external_id)
            for name, external_id in sorted(usernames.items())
        )
        for labeler in new_labelers:
            self.labelers[labeler.external_id] = labeler.id
        self.result.count("created", "labelers", len(new_labelers))

    def _resolve_generations(self, lines: list[_Line]) -> None:
        for number in {line.generation for line in lines} - {None} - self.generations.keys():
            generation, created = Generation.objects.get_or_create(
                number=number, defaults={"state": Generation.State.FINISHED}
            )
            self.generations[number] = generation.id
            if created:
                self.result.count("created", "generations")

    def _write_solutions(self, lines: list[_Line]) -> tuple[dict[str, int], dict[int, list[int]]]:
        """Find or create each line's solution; returns fingerprint -> id and, for solutions
        created here, their step ids by position."""
        by_fingerprint: dict[str, _Line] = {}
        for line in lines:
            problem_id = self.problems[line.problem][0]
            line_fingerprint = solution_fingerprint(problem_id, line.solution_steps)
            line.fingerprint = line_fingerprint
            by_fingerprint.setdefault(line_fingerprint, line)
        solution_ids = dict(
            Solution.objects.filter(fingerprint__in=by_fingerprint.keys()).values_list(
                "fingerprint", "id"
            )
        )
        self.result.count("skipped", "solutions", len(solution_ids))
        new = [(fp, line) for fp, line in by_fingerprint.items() if fp not in solution_ids]
        ids = allocate_ids(Solution, len(new))
        step_total = sum(len(line.solution_steps) for _, line in new)
        step_ids = iter(allocate_ids(Step, step_total))
        solution_rows = []
        step_rows = []
        new_step_ids: dict[int, list[int]] = {}
        for solution_id, (fingerprint, line) in zip(ids, new, strict=True):
            solution_ids[fingerprint] = solution_id
            grade = _grade(line.final_answer, line.ground_truth_answer)
            solution_rows.append(
                (
                    solution_id,
                    self.problems[line.problem][0],
                    line.final_answer,
                    grade,
                    "",
                    SOLUTION_SOURCE,
                    line.phase2,
                    line.selection_score,
                    fingerprint,
                    len(line.solution_steps),
                    self.now,
                )
            )
            positions = []
            for position, text in enumerate(line.solution_steps):
                step_id = next(step_ids)
                positions.append(step_id)
                step_rows.append((step_id, solution_id, position, text))
            new_step_ids[solution_id] = positions
        copy_solutions(solution_rows, step_rows, self.result)
        return solution_ids, new_step_ids

    def _write_alternatives(
        self,
        lines: list[_Line],
        solution_ids: dict[str, int],
        new_step_ids: dict[int, list[int]],
    ) -> None:
        """Phase 2: completions after the first of a step are that step's alternatives. The
        first line that offers alternatives for a step records them; later ones reuse them."""
        wanted: list[tuple[int, int, list[_Completion]]] = []
        for line in lines:
            if not line.phase2:
                continue
            solution_id = solution_ids[line.fingerprint]
            for position, step in enumerate(line.steps):
                if step.completions and len(step.completions) > 1:
                    if position < len(line.solution_steps):
                        wanted.append((solution_id, position, step.completions[1:]))
        if not wanted:
            return
        existing_solutions = {sid for sid, _, _ in wanted if sid not in new_step_ids}
        existing_steps: dict[tuple[int, int], int] = {}
        has_alternatives: set[int] = set()
        if existing_solutions:
            for solution_id, position, step_id in Step.objects.filter(
                solution_id__in=existing_solutions
            ).values_list("solution_id", "position", "id"):
                existing_steps[(solution_id, position)] = step_id
            has_alternatives = set(
                StepAlternative.objects.filter(step__solution_id__in=existing_solutions)
                .values_list("step_id", flat=True)
                .distinct()
            )
        rows = []
        for solution_id, position, alternatives in wanted:
            if solution_id in new_step_ids:
                step_id = new_step_ids[solution_id][position]
            else:
                step_id = existing_steps.get((solution_id, position))
                if step_id is None:
                    continue
            if step_id in has_alternatives:
                continue
            has_alternatives.add(step_id)
            for index, completion in enumerate(alternatives, start=1):
                rows.append((step_id, index, completion.text))
        ids = allocate_ids(StepAlternative, len(rows))
        copy_rows(
            StepAlternative,
            ["id", "step", "position", "text"],
            [(alt_id, *row) for alt_id, row in zip(ids, rows, strict=True)],
        )
        self.result.count("created", "alternatives", len(rows))

    def _write_labelings(self, lines: list[_Line], solution_ids: dict[str, int]) -> None:
        triples = {}
        for line in lines:
            triple = (
                self.labelers[line.labeler],
                solution_ids[line.fingerprint],
                None if line.generation is None else self.generations[line.generation],
            )
            if triple in triples:
                raise _duplicate_labeling(line, triples[triple])
            triples[triple] = line.number
        for triple in Labeling.objects.filter(
            solution_id__in={solution for _, solution, _ in triples}
        ).values_list("labeler_id", "solution_id", "generation_id"):
            if triple in triples:
                line = next(item for item in lines if item.number == triples[triple])
                raise _duplicate_labeling(line, None)

        labeling_ids = allocate_ids(Labeling, len(lines))
        labeled_step_ids = iter(allocate_ids(LabeledStep, sum(len(ln.steps) for ln in lines)))
        labeling_rows = []
        step_rows = []
        completion_rows = []
        for labeling_id, line in zip(labeling_ids, lines, strict=True):
            problem_id, answer, solution = self.problems[line.problem]
            answer_override = (
                None if line.ground_truth_answer == answer else line.ground_truth_answer
            )
            solution_override = None
            if line.ground_truth_solution is not None and line.ground_truth_solution != solution:
                solution_override = line.ground_truth_solution
            labeler_id, solution_id, generation_id = (
                self.labelers[line.labeler],
                solution_ids[line.fingerprint],
                None if line.generation is None else self.generations[line.generation],
            )
            labeling_rows.append(
                (
                    labeling_id,
                    solution_id,
                    labeler_id,
                    None,
                    generation_id,
                    line.is_quality_control,
                    line.is_screening,
                    line.finish_reason,
                    "",
                    line.total_time,
                    line.timestamp,
                    Labeling.Source.IMPORT,
                    answer_override,
                    solution_override,
                    line.import_key,
                    self.now,
                )
            )
            for position, step in enumerate(line.steps):
                step_id = next(labeled_step_ids)
                human = step.human
                step_rows.append(
                    (
                        step_id,
                        labeling_id,
                        position,
                        step.completions is None,
                        step.chosen,
                        human is not None,
                        human["text"] if human else None,
                        human["rating"] if human else None,
                        human["source"] if human else None,
                        human["flagged"] if human else None,
                    )
                )
                for index, completion in enumerate(step.completions or ()):
                    completion_rows.append(
                        (step_id, index, completion.text, completion.rating, completion.flagged)
                    )
        copy_rows(
            Labeling,
            [
                "id",
                "solution",
                "labeler",
                "task",
                "generation",
                "is_quality_control",
                "is_screening",
                "finish_reason",
                "finish_reason_text",
                "total_time_ms",
                "timestamp",
                "source",
                "ground_truth_answer_override",
                "ground_truth_solution_override",
                "import_key",
                "created_at",
            ],
            labeling_rows,
        )
        copy_rows(
            LabeledStep,
            [
                "id",
                "labeling",
                "position",
                "completions_null",
                "chosen_completion",
                "has_human_completion",
                "human_completion_text",
                "human_completion_rating",
                "human_completion_source",
                "human_completion_flagged",
            ],
            step_rows,
        )
        completion_ids = allocate_ids(LabeledCompletion, len(completion_rows))
        copy_rows(
            LabeledCompletion,
            ["id", "labeled_step", "position", "text", "rating", "flagged"],
            [(cid, *row) for cid, row in zip(completion_ids, completion_rows, strict=True)],
        )
        self.result.count("created", "labelings", len(labeling_rows))
        self.result.count("created", "labeled_steps", len(step_rows))
        self.result.count("created", "labeled_completions", len(completion_rows))


def _grade(final_answer: str | None, reference: str) -> str:
    if not reference.strip():
        return Solution.Grade.UNGRADED
    return Solution.Grade.CORRECT if grade_answer(final_answer, reference) else Solution.Grade.WRONG


def _duplicate_labeling(line: _Line, other_line: int | None) -> ImportLineError:
    where = f"line {other_line}" if other_line else "an earlier import"
    generation = "phase 1" if line.generation is None else f"generation {line.generation}"
    return ImportLineError(
        line.number,
        "labeler",
        f"labeler {line.labeler} already labeled this solution in {generation} ({where})",
    )
