"""Writing parsed PRM800K lines: a handful of queries and COPYs per batch of lines."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db.models.functions import MD5
from django.utils import timezone

from labeling.grading import grade_answer
from labeling.imports.common import (
    ImportLineError,
    ImportResult,
    allocate_ids,
    copy_rows,
    copy_solutions,
    solution_fingerprint,
    text_md5,
)
from labeling.imports.prm800k.parse import ParsedLine
from labeling.imports.prm800k.schema import Completion, LabelStep
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

SOLUTION_SOURCE = "prm800k"
LABELER_USERNAME_PREFIX = "prm800k-"


class Writer:
    """Resolves and writes one batch at a time with a handful of queries per batch."""

    def __init__(self, result: ImportResult) -> None:
        self.result = result
        self.problems: dict[str, tuple[int, str, str]] = {}  # text -> (id, answer, solution)
        self.labelers: dict[str, int] = {}  # external id -> labeler id
        self.generations: dict[int, int] = {}  # number -> generation id
        self.now = timezone.now()

    def write(self, lines: list[ParsedLine]) -> None:
        lines = self._drop_known_lines(lines)
        if not lines:
            return
        self._resolve_problems(lines)
        self._resolve_labelers(lines)
        self._resolve_generations(lines)
        solution_ids, new_step_ids = self._write_solutions(lines)
        self._write_alternatives(lines, solution_ids, new_step_ids)
        self._write_labelings(lines, solution_ids)

    def _drop_known_lines(self, lines: list[ParsedLine]) -> list[ParsedLine]:
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

    def _resolve_problems(self, lines: list[ParsedLine]) -> None:
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

    def _resolve_labelers(self, lines: list[ParsedLine]) -> None:
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

    def _resolve_generations(self, lines: list[ParsedLine]) -> None:
        for number in {line.generation for line in lines} - {None} - self.generations.keys():
            generation, created = Generation.objects.get_or_create(
                number=number, defaults={"state": Generation.State.FINISHED}
            )
            self.generations[number] = generation.id
            if created:
                self.result.count("created", "generations")

    def _write_solutions(
        self, lines: list[ParsedLine]
    ) -> tuple[dict[str, int], dict[int, list[int]]]:
        """Find or create each line's solution; returns fingerprint -> id and, for solutions
        created here, their step ids by position."""
        by_fingerprint: dict[str, ParsedLine] = {}
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
        lines: list[ParsedLine],
        solution_ids: dict[str, int],
        new_step_ids: dict[int, list[int]],
    ) -> None:
        """Phase 2: completions after the first of a step are that step's alternatives. The
        first line that offers alternatives for a step records them; later ones reuse them."""
        wanted: list[tuple[int, int, list[Completion]]] = []
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
        existing_steps, has_alternatives = _stored_steps(
            {sid for sid, _, _ in wanted if sid not in new_step_ids}
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

    def _write_labelings(self, lines: list[ParsedLine], solution_ids: dict[str, int]) -> None:
        self._refuse_duplicates(lines, solution_ids)
        labeling_ids = allocate_ids(Labeling, len(lines))
        labeled_step_ids = iter(allocate_ids(LabeledStep, sum(len(ln.steps) for ln in lines)))
        labeling_rows, step_rows, completion_rows = [], [], []
        for labeling_id, line in zip(labeling_ids, lines, strict=True):
            labeling_rows.append(self._labeling_row(labeling_id, line, solution_ids))
            for position, step in enumerate(line.steps):
                step_id = next(labeled_step_ids)
                step_rows.append(_labeled_step_row(step_id, labeling_id, position, step))
                for index, completion in enumerate(step.completions or ()):
                    completion_rows.append(
                        (step_id, index, completion.text, completion.rating, completion.flagged)
                    )
        copy_rows(Labeling, LABELING_FIELDS, labeling_rows)
        copy_rows(LabeledStep, LABELED_STEP_FIELDS, step_rows)
        completion_ids = allocate_ids(LabeledCompletion, len(completion_rows))
        copy_rows(
            LabeledCompletion,
            ["id", "labeled_step", "position", "text", "rating", "flagged"],
            [(cid, *row) for cid, row in zip(completion_ids, completion_rows, strict=True)],
        )
        self.result.count("created", "labelings", len(labeling_rows))
        self.result.count("created", "labeled_steps", len(step_rows))
        self.result.count("created", "labeled_completions", len(completion_rows))

    def _triple(
        self, line: ParsedLine, solution_ids: dict[str, int]
    ) -> tuple[int, int, int | None]:
        """(labeler, solution, generation) ids: one labeling of each, at most."""
        return (
            self.labelers[line.labeler],
            solution_ids[line.fingerprint],
            None if line.generation is None else self.generations[line.generation],
        )

    def _refuse_duplicates(self, lines: list[ParsedLine], solution_ids: dict[str, int]) -> None:
        triples: dict[tuple[int, int, int | None], int] = {}
        for line in lines:
            triple = self._triple(line, solution_ids)
            if triple in triples:
                raise _duplicate_labeling(line, triples[triple])
            triples[triple] = line.number
        for triple in Labeling.objects.filter(
            solution_id__in={solution for _, solution, _ in triples}
        ).values_list("labeler_id", "solution_id", "generation_id"):
            if triple in triples:
                line = next(item for item in lines if item.number == triples[triple])
                raise _duplicate_labeling(line, None)

    def _labeling_row(
        self, labeling_id: int, line: ParsedLine, solution_ids: dict[str, int]
    ) -> tuple:
        """A Labeling row (LABELING_FIELDS); the line's own ground truth only where it differs
        from the stored problem's."""
        _, answer, solution = self.problems[line.problem]
        answer_override = None if line.ground_truth_answer == answer else line.ground_truth_answer
        solution_override = None
        if line.ground_truth_solution is not None and line.ground_truth_solution != solution:
            solution_override = line.ground_truth_solution
        labeler_id, solution_id, generation_id = self._triple(line, solution_ids)
        return (
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


LABELING_FIELDS = [
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
]
LABELED_STEP_FIELDS = [
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
]


def _stored_steps(solution_ids: set[int]) -> tuple[dict[tuple[int, int], int], set[int]]:
    """Stored solutions' step ids by (solution, position), and which steps have alternatives."""
    if not solution_ids:
        return {}, set()
    steps = {
        (solution_id, position): step_id
        for solution_id, position, step_id in Step.objects.filter(
            solution_id__in=solution_ids
        ).values_list("solution_id", "position", "id")
    }
    with_alternatives = set(
        StepAlternative.objects.filter(step__solution_id__in=solution_ids)
        .values_list("step_id", flat=True)
        .distinct()
    )
    return steps, with_alternatives


def _labeled_step_row(step_id: int, labeling_id: int, position: int, step: LabelStep) -> tuple:
    human = step.human_completion
    return (
        step_id,
        labeling_id,
        position,
        step.completions is None,
        step.chosen_completion,
        human is not None,
        human.text if human else None,
        human.rating if human else None,
        human.source if human else None,
        human.flagged if human else None,
    )


def _grade(final_answer: str | None, reference: str) -> str:
    if not reference.strip():
        return Solution.Grade.UNGRADED
    return Solution.Grade.CORRECT if grade_answer(final_answer, reference) else Solution.Grade.WRONG


def _duplicate_labeling(line: ParsedLine, other_line: int | None) -> ImportLineError:
    where = f"line {other_line}" if other_line else "an earlier import"
    generation = "phase 1" if line.generation is None else f"generation {line.generation}"
    return ImportLineError(
        line.number,
        "labeler",
        f"labeler {line.labeler} already labeled this solution in {generation} ({where})",
    )
