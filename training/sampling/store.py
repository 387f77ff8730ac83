"""A chunk's samples: split, graded and de-duplicated, then stored as solutions and steps."""

from __future__ import annotations

from dataclasses import dataclass

from labeling.grading import extract_final_answer, grade_answer
from labeling.imports import solution_fingerprint
from labeling.models import Problem, Solution, Step
from training.generator import (
    Completion,
    split_solution,
)
from training.models import SamplingRun
from training.sampling.common import SOLUTION_SOURCE


@dataclass
class Drawn:
    problem: Problem
    index: int
    seed: int
    completion: Completion


def classify(
    drawn: list[Drawn], counts: dict[str, int]
) -> list[tuple[Drawn, list[str], str | None, str]]:
    """Split, extract and grade each sample (outside any transaction: grading can take a while).
    Returns the keepers with steps, final answer and grade; counts the rest."""
    keepers = []
    for sample in drawn:
        if sample.completion.finish_reason == "length":
            counts["truncated"] += 1
        parsed = split_solution(sample.completion.text)
        if parsed.is_empty:
            counts["empty"] += 1
            continue
        answer = extract_final_answer(parsed.steps)
        if answer is None:
            counts["no_answer"] += 1
            continue
        reference = sample.problem.reference_answer or ""
        if not reference.strip():
            grade = Solution.Grade.UNGRADED
        elif grade_answer(answer, reference):
            grade = Solution.Grade.CORRECT
        else:
            grade = Solution.Grade.WRONG
        keepers.append((sample, parsed.steps, answer, grade))
    return keepers


Keeper = tuple[Drawn, list[str], str | None, str]  # sample, steps, final answer, grade


def store_chunk(run: SamplingRun, keepers: list[Keeper], counts: dict[str, int]) -> None:
    """Write the new solutions and steps. Call inside the chunk's transaction, holding the
    imports' lock (imports create solutions by fingerprint too)."""
    fingerprints = _fresh(run, keepers, counts)
    new = [
        (_solution(run, fingerprint, sample, steps, answer, grade), steps)
        for fingerprint, (sample, steps, answer, grade) in fingerprints.items()
    ]
    new.sort(key=lambda item: (item[0].problem.id, item[0].sample_index))
    solutions = Solution.objects.bulk_create([solution for solution, _ in new])
    Step.objects.bulk_create(
        [
            Step(solution=solution, position=position, text=text)
            for solution, (_, steps) in zip(solutions, new, strict=True)
            for position, text in enumerate(steps)
        ]
    )
    counts["kept"] += len(solutions)
    for solution in solutions:
        counts[solution.grade] += 1


def _fresh(run: SamplingRun, keepers: list[Keeper], counts: dict[str, int]) -> dict[str, Keeper]:
    """The keepers to store, by fingerprint: not sampled already (same key and index), not a
    duplicate of each other nor of a stored solution; the others are counted."""
    # Another run with the same sampling key may have stored some of these indexes meanwhile.
    taken = set(
        Solution.objects.filter(
            problem_id__in={sample.problem.id for sample, *_ in keepers},
            sampling_key=run.params["sampling_key"],
        ).values_list("problem_id", "sample_index")
    )
    counts["already_sampled"] += sum((s.problem.id, s.index) in taken for s, *_ in keepers)
    keepers = [k for k in keepers if (k[0].problem.id, k[0].index) not in taken]
    fingerprints = {
        solution_fingerprint(keeper[0].problem.id, keeper[1]): keeper
        for keeper in reversed(keepers)  # the first sample wins
    }
    counts["duplicates"] += len(keepers) - len(fingerprints)
    existing = set(
        Solution.objects.filter(fingerprint__in=fingerprints).values_list("fingerprint", flat=True)
    )
    counts["duplicates"] += len(existing)
    return {fp: keeper for fp, keeper in fingerprints.items() if fp not in existing}


def _solution(
    run: SamplingRun, fingerprint: str, sample: Drawn, steps: list[str], answer, grade: str
) -> Solution:
    """An unsaved Solution for a kept sample, with how it was generated."""
    params, completion = run.params, sample.completion
    description = {
        key: params["generator_config"].get(key)
        for key in ("backend", "model", "endpoint")
        if params["generator_config"].get(key) is not None
    }
    return Solution(
        problem=sample.problem,
        final_answer=answer,
        grade=grade,
        generator=run.generator,
        source=SOLUTION_SOURCE,
        is_pre_generated=True,
        fingerprint=fingerprint,
        num_steps=len(steps),
        sampling_key=params["sampling_key"],
        sample_index=sample.index,
        generation_params={
            "generator": run.generator,
            **description,
            "prompt_sha256": params["prompt_sha256"],
            **params["sampling"],
            "seed": params["seed"],
            "sample_index": sample.index,
            "sample_seed": sample.seed,
            "finish_reason": completion.finish_reason,
            "completion_tokens": completion.completion_tokens,
            **({"forced_answer": True} if completion.extra.get("forced_answer") else {}),
            "sampling_run": run.id,
        },
    )
