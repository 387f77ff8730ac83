"""Writes of phase-1 labeling: rounds, decided steps, finishing a trajectory.

A phase-1 round is a ``Generation`` with strategy ``phase1`` whose tasks are problems: each
task points at the problem's *seed* solution (no steps; source ``phase1-seed``), so claiming,
leases, slots and their constraints are exactly phase 2's (labeling/services.py). What the
labeler builds lives on their assignment until they finish: ``TrajectoryCandidates`` (what the
generator offered, per prefix) and ``TrajectoryStep`` (what they rated and chose or wrote).
Finishing turns it into a ``Solution`` (the trajectory, ``is_pre_generated=False``) and one
``Labeling`` shaped like a PRM800K phase-1 line, in one transaction.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from labeling import services as labeling_services
from labeling.grading import extract_final_answer, grade_answer
from labeling.imports.common import lock_imports, solution_fingerprint
from labeling.models import (
    Assignment,
    Generation,
    LabeledCompletion,
    LabeledStep,
    Labeler,
    Labeling,
    LabelingTask,
    Problem,
    Solution,
    Step,
    TrajectoryCandidates,
    TrajectoryStep,
)
from labeling.services import (
    PHASE1_STRATEGY,
    LabelingInvalid,
    LeaseLost,
    _ensure_lease_live,
    _lock_own_assignment_by_id,
    lease_duration,
)
from training.generator import FewShotPrompt
from training.generator.steps import ends_solution
from training.phase1 import sampling

SEED_SOURCE = "phase1-seed"
TRAJECTORY_SOURCE = "phase1"
HUMAN_SOURCE = "human"
MAX_K = 16
MAX_STEP_CHARS = 4000
MAX_STEP_TOKENS = 1024
MAX_PREFETCH_PER_STEP = 2


class NotPhase1(labeling_services.LabelingError):
    """The assignment is a phase-2 lease (or the other way round)."""


# ---------------------------------------------------------------- rounds


def _seed_fingerprint(problem_id: int) -> str:
    # Distinct from any real solution's fingerprint, even the empty trajectory's.
    return hashlib.sha256(f"stepwise-phase1-seed:{problem_id}".encode()).hexdigest()


def _seed_solutions(problem_ids: list[int]) -> dict[int, int]:
    """Problem id -> its seed solution id, creating the missing ones."""
    fingerprints = {_seed_fingerprint(pid): pid for pid in problem_ids}
    found = dict(
        Solution.objects.filter(fingerprint__in=fingerprints).values_list("fingerprint", "id")
    )
    missing = [
        Solution(
            problem_id=pid,
            fingerprint=fp,
            source=SEED_SOURCE,
            is_pre_generated=False,
            num_steps=0,
            grade=Solution.Grade.UNGRADED,
        )
        for fp, pid in fingerprints.items()
        if fp not in found
    ]
    for solution in Solution.objects.bulk_create(missing):
        found[solution.fingerprint] = solution.pk
    return {pid: found[fp] for fp, pid in fingerprints.items()}


def phase1_round_create(
    *,
    problem_ids: list[int],
    generator: str,
    k: int = 4,
    labelings_per_problem: int = 1,
    temperature: float = 0.7,
    top_p: float = 1.0,
    max_new_tokens: int = 128,
    force_answer: bool | None = None,
    seed: int = 0,
    launched_by=None,
) -> Generation:
    """A phase-1 round over ``problem_ids``: one task per problem, leased like phase 2's.

    Raises ValidationError with field-level messages (nothing is written then).
    """
    from training.sampling import generator_resolve

    errors: dict[str, list[str]] = {}
    if type(k) is not int or not 1 <= k <= MAX_K:
        errors["k"] = [f"Give a whole number of candidates from 1 to {MAX_K}."]
    if type(labelings_per_problem) is not int or labelings_per_problem < 1:
        errors["labelings_per_problem"] = ["Give a whole number, at least 1."]
    if not isinstance(temperature, int | float) or not 0 <= temperature <= 2:
        errors["temperature"] = ["Give a temperature from 0 to 2."]
    if not isinstance(top_p, int | float) or not 0 < top_p <= 1:
        errors["top_p"] = ["Give top_p in (0, 1]."]
    if type(max_new_tokens) is not int or not 1 <= max_new_tokens <= MAX_STEP_TOKENS:
        errors["max_new_tokens"] = [
            f"Give a whole number of tokens per step, 1 to {MAX_STEP_TOKENS}."
        ]
    if type(seed) is not int or not 0 <= seed < 2**31:
        errors["seed"] = ["Give a whole number from 0 to 2147483647."]
    ids = list(dict.fromkeys(problem_ids))
    if not ids:
        errors["problem_ids"] = ["Give at least one problem."]
    else:
        known = set(Problem.objects.filter(pk__in=ids).values_list("id", flat=True))
        unknown = [pid for pid in ids if pid not in known]
        if unknown:
            errors["problem_ids"] = [f"No such problems: {unknown[:10]}."]
    config: dict[str, Any] = {}
    try:
        config = generator_resolve(generator)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if config.get("backend") == "openai" and config.get("endpoint", "chat") == "chat":
        errors.setdefault("generator", []).append(
            f"Generator {generator}: phase 1 continues a started answer, which needs "
            "endpoint 'completions' (a chat endpoint cannot continue a reply)."
        )
    if errors:
        raise ValidationError(errors)
    if force_answer is None:
        force_answer = bool(config.get("force_answer", False))
    prompt = FewShotPrompt()
    if config.get("prompt_file"):
        prompt = FewShotPrompt.from_file(config["prompt_file"])
    params = {
        "generator": generator,
        "generator_config": config,
        "prompt": prompt.as_dict(),
        "k": k,
        "seed": seed,
        "sampling": {
            "temperature": float(temperature),
            "top_p": float(top_p),
            "max_new_tokens": max_new_tokens,
            "force_answer": force_answer,
        },
    }
    for _attempt in range(3):
        try:
            with transaction.atomic():
                number = (Generation.objects.aggregate(n=Max("number"))["n"] or 0) + 1
                generation = Generation.objects.create(
                    number=max(number, 0),
                    strategy=PHASE1_STRATEGY,
                    strategy_params=params,
                    state=Generation.State.ACTIVE,
                    labelings_per_task=labelings_per_problem,
                    target_size=len(ids),
                    launched_by=launched_by,
                )
                seeds = _seed_solutions(ids)
                LabelingTask.objects.bulk_create(
                    LabelingTask(
                        solution_id=seeds[pid],
                        generation=generation,
                        kind=LabelingTask.Kind.REGULAR,
                        labelings_required=labelings_per_problem,
                    )
                    for pid in ids
                )
                return generation
        except IntegrityError:  # another round took the number: take the next
            continue
    raise ValidationError({"number": ["Could not number the round; try again."]})


# ---------------------------------------------------------------- trajectories


@dataclass
class Trajectory:
    """A phase-1 assignment as the labeler sees it: decided steps and the current candidates."""

    assignment: Assignment
    problem: Problem
    steps: list[TrajectoryStep]
    candidates: TrajectoryCandidates | None
    labeling: Labeling | None = None

    @property
    def texts(self) -> list[str]:
        return [_step_text(step) for step in self.steps]


def _step_text(step: TrajectoryStep) -> str:
    if step.human_text is not None:
        return step.human_text
    return step.candidates.candidates[step.chosen_completion]["text"]


def round_params(assignment: Assignment) -> dict[str, Any]:
    return assignment.task.generation.strategy_params


def _require_phase1(assignment: Assignment) -> None:
    if not labeling_services.is_phase1(assignment):
        raise NotPhase1("this is not a phase-1 task")


def _decided(assignment: Assignment) -> list[TrajectoryStep]:
    return list(
        TrajectoryStep.objects.filter(assignment=assignment)
        .select_related("candidates")
        .order_by("position")
    )


def _problem(assignment: Assignment) -> Problem:
    return Problem.objects.get(solutions__id=assignment.task.solution_id)


def trajectory_load(*, assignment: Assignment, sample: bool = True) -> Trajectory:
    """The trajectory of an assignment; samples the current step's candidates if none are stored
    yet (``sample``). Call outside a transaction."""
    _require_phase1(assignment)
    problem = _problem(assignment)
    steps = _decided(assignment)
    trajectory = Trajectory(assignment=assignment, problem=problem, steps=steps, candidates=None)
    if assignment.state == Assignment.State.SUBMITTED:
        trajectory.labeling = assignment.labeling
        return trajectory
    if sample:
        trajectory.candidates = sampling.candidates_get_or_sample(
            assignment=assignment,
            problem=problem.text,
            steps=trajectory.texts,
            round_params=round_params(assignment),
        )
    return trajectory


def _own_live(assignment_id: int, labeler: Labeler) -> Assignment:
    """Read-only ownership and lease check before work done outside a transaction."""
    with transaction.atomic():
        assignment = _lock_own_assignment_by_id(assignment_id=assignment_id, labeler=labeler)
        _require_phase1(assignment)
        if assignment.state != Assignment.State.SUBMITTED:
            _ensure_lease_live(assignment, timezone.now())
    return assignment


def trajectory_open(*, assignment_id: int, labeler: Labeler) -> Trajectory:
    """Reload: the same decided steps and the same stored candidates (sampled only if the
    current step never had any)."""
    return trajectory_load(assignment=_own_live(assignment_id, labeler))


def trajectory_prefetch(
    *, assignment_id: int, labeler: Labeler, position: int, candidate: int
) -> TrajectoryCandidates | None:
    """Sample, ahead of the choice, the candidates that would follow choosing ``candidate`` at
    ``position``. Returns None when that choice would end the solution (nothing follows) or
    when this step already had ``MAX_PREFETCH_PER_STEP`` guesses sampled."""
    assignment = _own_live(assignment_id, labeler)
    steps = _decided(assignment)
    if position != len(steps):
        raise LabelingInvalid({"position": [f"the current step is {len(steps)}"]})
    texts = [_step_text(step) for step in steps]
    current = TrajectoryCandidates.objects.filter(
        assignment=assignment, prefix_sha256=sampling.prefix_sha256(texts)
    ).first()
    if current is None or not 0 <= candidate < len(current.candidates):
        raise LabelingInvalid({"candidate": ["no such candidate at the current step"]})
    chosen = current.candidates[candidate]["text"]
    if ends_solution(chosen):
        return None
    ahead = [*texts, chosen]
    stored = TrajectoryCandidates.objects.filter(
        assignment=assignment, prefix_sha256=sampling.prefix_sha256(ahead)
    ).first()
    if stored is not None:
        return stored
    # Guesses cost generator time: a few per step, whatever a client asks for.
    guesses = TrajectoryCandidates.objects.filter(
        assignment=assignment, position=len(texts) + 1, prefetched=True
    ).count()
    if guesses >= MAX_PREFETCH_PER_STEP:
        return None
    return sampling.candidates_get_or_sample(
        assignment=assignment,
        problem=_problem(assignment).text,
        steps=ahead,
        round_params=round_params(assignment),
        prefetched=True,
    )


def _validate_ratings(
    candidates: TrajectoryCandidates,
    ratings: list[Any],
    flags: list[Any],
    *,
    all_rated: bool,
) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    n = len(candidates.candidates)
    if len(ratings) != n:
        errors["ratings"] = [f"give one rating per candidate ({n})"]
    elif any(r not in (-1, 0, 1, None) for r in ratings):
        errors["ratings"] = ["a rating is -1, 0, 1 or null"]
    elif all_rated and any(r is None for r in ratings):
        errors["ratings"] = ["rate every candidate before choosing or writing a step"]
    if len(flags) != n or any(type(f) is not bool for f in flags):
        errors["flags"] = [f"give one flag (true/false) per candidate ({n})"]
    return errors


def _lock_for_write(assignment_id: int, labeler: Labeler) -> Assignment:
    """Lock task then assignment (the order claiming and submitting use) and check the lease."""
    ref = Assignment.objects.filter(pk=assignment_id).values("task_id").first()
    if ref:
        LabelingTask.objects.select_for_update(no_key=True).filter(pk=ref["task_id"]).first()
    assignment = _lock_own_assignment_by_id(assignment_id=assignment_id, labeler=labeler)
    _require_phase1(assignment)
    return assignment


@dataclass
class StepResult:
    trajectory: Trajectory
    finished: bool


def trajectory_step(
    *,
    assignment_id: int,
    labeler: Labeler,
    position: int,
    ratings: list[Any],
    flags: list[Any],
    chosen: int | None = None,
    human_text: str | None = None,
    human_flagged: bool = False,
    total_time_ms: int = 0,
) -> StepResult:
    """Record the decision at ``position`` (every candidate rated, then ``chosen`` or a written
    step) and return the next candidates. A step holding the final answer finishes the
    trajectory (``finish_reason = solution``). A retry of the same decision changes nothing.
    """
    with transaction.atomic():
        assignment = _lock_for_write(assignment_id, labeler)
        if assignment.state == Assignment.State.SUBMITTED:
            return StepResult(trajectory_load(assignment=assignment, sample=False), True)
        now = timezone.now()
        _ensure_lease_live(assignment, now)
        steps = _decided(assignment)
        texts = [_step_text(step) for step in steps]
        human = human_text.strip() if isinstance(human_text, str) else None
        if position < len(steps):
            step = steps[position]
            same = (
                step.ratings == list(ratings)
                and step.flags == list(flags)
                and step.chosen_completion == chosen
                and step.human_text == human
            )
            if not same:
                raise LabelingInvalid({"position": [f"step {position} was already decided"]})
        else:
            if position != len(steps):
                raise LabelingInvalid({"position": [f"the current step is {len(steps)}"]})
            current = TrajectoryCandidates.objects.filter(
                assignment=assignment, prefix_sha256=sampling.prefix_sha256(texts)
            ).first()
            if current is None:
                raise LabelingInvalid({"position": ["no candidates were shown for this step"]})
            errors = _validate_ratings(current, ratings, flags, all_rated=True)
            if (chosen is None) == (human is None):
                errors["chosen"] = ["choose one candidate or write a step (not both)"]
            elif chosen is not None and not 0 <= chosen < len(current.candidates):
                errors["chosen"] = [f"choose a candidate from 0 to {len(current.candidates) - 1}"]
            elif human is not None and not human:
                errors["human_text"] = ["write the step"]
            elif human is not None and len(human) > MAX_STEP_CHARS:
                errors["human_text"] = [f"a step has at most {MAX_STEP_CHARS} characters"]
            if errors:
                raise LabelingInvalid(errors)
            step = TrajectoryStep.objects.create(
                assignment=assignment,
                position=position,
                candidates=current,
                ratings=list(ratings),
                flags=list(flags),
                chosen_completion=chosen,
                human_text=human,
                human_flagged=bool(human_flagged) if human is not None else None,
            )
            steps.append(step)
            texts.append(_step_text(step))
        if ends_solution(texts[-1]) and position == len(steps) - 1:
            _finish(
                assignment,
                steps=steps,
                finish_reason=Labeling.FinishReason.SOLUTION,
                reason="",
                total_time_ms=total_time_ms,
                last=None,
                now=now,
            )
            return StepResult(trajectory_load(assignment=assignment, sample=False), True)
        assignment.lease_expires_at = now + lease_duration()
        assignment.draft_active_ms = total_time_ms
        assignment.save(update_fields=["lease_expires_at", "draft_active_ms"])
    return StepResult(trajectory_load(assignment=assignment), False)


def trajectory_undo(*, assignment_id: int, labeler: Labeler, position: int) -> Trajectory:
    """Take back the decision at ``position`` (the last one): its candidates stay stored, so the
    same ones are shown again."""
    with transaction.atomic():
        assignment = _lock_for_write(assignment_id, labeler)
        _ensure_lease_live(assignment, timezone.now())
        last = TrajectoryStep.objects.filter(assignment=assignment).order_by("-position").first()
        if last is None or last.position != position:
            raise LabelingInvalid({"position": ["only the last decided step can be undone"]})
        last.delete()
    return trajectory_load(assignment=assignment)


def trajectory_end(
    *,
    assignment_id: int,
    labeler: Labeler,
    finish_reason: str,
    reason: str,
    position: int,
    ratings: list[Any],
    flags: list[Any],
    total_time_ms: int,
) -> tuple[Labeling, bool]:
    """Give up or report a bad problem at ``position``; the current candidates' ratings so far
    are kept (unrated ones as null). Returns (labeling, created); a retry returns the first."""
    if finish_reason not in (Labeling.FinishReason.GIVE_UP, Labeling.FinishReason.BAD_PROBLEM):
        raise LabelingInvalid({"finish_reason": ["must be give_up or bad_problem"]})
    if not reason.strip():
        raise LabelingInvalid(
            {"reason": ["a reason is required when giving up or reporting a bad problem"]}
        )
    with transaction.atomic():
        assignment = _lock_for_write(assignment_id, labeler)
        if assignment.state == Assignment.State.SUBMITTED:
            return assignment.labeling, False
        now = timezone.now()
        _ensure_lease_live(assignment, now)
        steps = _decided(assignment)
        if position != len(steps):
            raise LabelingInvalid({"position": [f"the current step is {len(steps)}"]})
        texts = [_step_text(step) for step in steps]
        current = TrajectoryCandidates.objects.filter(
            assignment=assignment, prefix_sha256=sampling.prefix_sha256(texts)
        ).first()
        last = None
        if current is not None and any(r is not None for r in ratings):
            errors = _validate_ratings(current, ratings, flags, all_rated=False)
            if errors:
                raise LabelingInvalid(errors)
            last = (current, list(ratings), list(flags))
        labeling = _finish(
            assignment,
            steps=steps,
            finish_reason=finish_reason,
            reason=reason,
            total_time_ms=total_time_ms,
            last=last,
            now=now,
        )
        return labeling, True


def _trajectory_solution(problem: Problem, texts: list[str], generator: str) -> Solution:
    """The solution a trajectory is: found by fingerprint (as imports do) or created, graded."""
    lock_imports()  # imports create solutions by fingerprint too
    fingerprint = solution_fingerprint(problem.pk, texts)
    solution = Solution.objects.filter(fingerprint=fingerprint).first()
    if solution is not None:
        return solution
    final_answer = extract_final_answer(texts) if texts else None
    if problem.reference_answer.strip():
        correct = grade_answer(final_answer, problem.reference_answer)
        grade = Solution.Grade.CORRECT if correct else Solution.Grade.WRONG
    else:
        grade = Solution.Grade.UNGRADED
    solution = Solution.objects.create(
        problem=problem,
        final_answer=final_answer,
        grade=grade,
        generator=generator,
        source=TRAJECTORY_SOURCE,
        is_pre_generated=False,
        fingerprint=fingerprint,
        num_steps=len(texts),
    )
    Step.objects.bulk_create(
        Step(solution=solution, position=i, text=text) for i, text in enumerate(texts)
    )
    return solution


def _finish(
    assignment: Assignment,
    *,
    steps: list[TrajectoryStep],
    finish_reason: str,
    reason: str,
    total_time_ms: int,
    last: tuple[TrajectoryCandidates, list, list] | None,
    now,
) -> Labeling:
    """Store the labeling whole (call inside the transaction that locked the assignment)."""
    task = assignment.task
    problem = _problem(assignment)
    texts = [_step_text(step) for step in steps]
    solution = _trajectory_solution(problem, texts, task.generation.strategy_params["generator"])
    labeling = Labeling.objects.create(
        solution=solution,
        labeler_id=assignment.labeler_id,
        task=task,
        generation_id=task.generation_id,
        finish_reason=finish_reason,
        finish_reason_text=reason,
        total_time_ms=max(0, int(total_time_ms)),
        timestamp=now,
        source=Labeling.Source.WORKSPACE,
    )
    rows: list[tuple[LabeledStep, list[LabeledCompletion]]] = []
    for step in steps:
        written = step.human_text is not None
        labeled = LabeledStep(
            labeling=labeling,
            position=step.position,
            chosen_completion=step.chosen_completion,
            has_human_completion=written,
            human_completion_text=step.human_text,
            human_completion_rating=None,
            human_completion_source=HUMAN_SOURCE if written else None,
            human_completion_flagged=bool(step.human_flagged) if written else None,
        )
        rows.append((labeled, _completions(step.candidates, step.ratings, step.flags)))
    if finish_reason != Labeling.FinishReason.SOLUTION:
        if last is None:
            # Nothing rated where they stopped: PRM800K writes `completions: null` there.
            rows.append(
                (LabeledStep(labeling=labeling, position=len(steps), completions_null=True), [])
            )
        else:
            candidates, ratings, flags = last
            rows.append(
                (
                    LabeledStep(labeling=labeling, position=len(steps)),
                    _completions(candidates, ratings, flags),
                )
            )
    created = LabeledStep.objects.bulk_create([labeled for labeled, _ in rows])
    completions = []
    for labeled, items in zip(created, (items for _, items in rows), strict=True):
        for item in items:
            item.labeled_step = labeled
            completions.append(item)
    LabeledCompletion.objects.bulk_create(completions)

    assignment.state = Assignment.State.SUBMITTED
    assignment.labeling = labeling
    assignment.finished_at = now
    assignment.save(update_fields=["state", "labeling", "finished_at"])
    finished = Assignment.objects.filter(task=task, state=Assignment.State.SUBMITTED).count()
    if finished >= task.labelings_required:
        LabelingTask.objects.filter(pk=task.pk, state=LabelingTask.State.OPEN).update(
            state=LabelingTask.State.DONE
        )
    return labeling


def _completions(
    candidates: TrajectoryCandidates, ratings: list, flags: list
) -> list[LabeledCompletion]:
    return [
        LabeledCompletion(
            position=j,
            text=candidate["text"],
            rating=ratings[j],
            flagged=bool(flags[j]),
        )
        for j, candidate in enumerate(candidates.candidates)
    ]


__all__ = [
    "LeaseLost",
    "NotPhase1",
    "StepResult",
    "Trajectory",
    "phase1_round_create",
    "trajectory_end",
    "trajectory_open",
    "trajectory_prefetch",
    "trajectory_step",
    "trajectory_undo",
]
