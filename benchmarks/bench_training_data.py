"""Training-side database work: building training data and writing scores, each vs a baseline.

    python benchmarks/bench_training_data.py [--problems 400] [--labelings-per-solution 2]

1. Training data: `training.datasets.build_training_data` (three streamed queries merged in
   Python) against the obvious ORM version (labelings with `prefetch_related` of steps,
   completions and solution steps, all in memory), both feeding the same merge code, so only the
   data access differs. Reports seconds, queries and peak traced Python memory.
2. Score writes: `score_solutions`' batched `bulk_create(update_conflicts=True)` against one
   `update_or_create` per solution, for the same rows (no model involved).

Runs on a scratch database `stepwise_bench_training` (dropped and recreated).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import tracemalloc
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_db import recreate_database, setup_django  # noqa: E402

DB_NAME = "stepwise_bench_training"


def populate(problems: int, per_solution: int, seed: int = 0) -> None:
    from django.contrib.auth import get_user_model

    from labeling.models import (
        LabeledCompletion,
        LabeledStep,
        Labeler,
        Labeling,
        Problem,
        Solution,
        Step,
    )  # fmt: skip

    rng = random.Random(seed)
    users = [get_user_model().objects.create_user(f"bench-{i}") for i in range(per_solution)]
    labelers = [Labeler.objects.create(user=u) for u in users]
    probs = Problem.objects.bulk_create(
        Problem(text=f"Problem {i}: compute {i} * 3 + 7.", reference_answer=str(3 * i + 7))
        for i in range(problems)
    )
    sols = Solution.objects.bulk_create(
        Solution(
            problem=p,
            fingerprint=f"{p.id}-{j}",
            num_steps=8,
            grade=rng.choice(["correct", "wrong"]),
        )
        for p in probs
        for j in range(4)
    )
    Step.objects.bulk_create(
        Step(solution=s, position=k, text=f"Step {k} of solution {s.id}: {k} * 3 = {3 * k}.")
        for s in sols
        for k in range(8)
    )
    labelings = Labeling.objects.bulk_create(
        Labeling(solution=s, labeler=who, finish_reason="found_error",
                 timestamp=datetime(2026, 1, 1, tzinfo=UTC))
        for s in sols
        for who in labelers
    )  # fmt: skip
    steps, plans = [], []
    for labeling in labelings:
        error = rng.randrange(2, 9)  # 8 = no error
        for k in range(min(error + 1, 8)):
            steps.append(LabeledStep(labeling=labeling, position=k, chosen_completion=0))
            plans.append((k, -1 if k == error else rng.choice([1, 1, 1, 0]), k == error))
    steps = LabeledStep.objects.bulk_create(steps, batch_size=5000)
    completions = []
    for step, (k, rating, is_error) in zip(steps, plans, strict=True):
        completions.append(
            LabeledCompletion(labeled_step=step, position=0, text=f"s{k}", rating=rating)
        )
        if is_error:
            completions.append(
                LabeledCompletion(labeled_step=step, position=1, text=f"fix {k}", rating=1)
            )
    LabeledCompletion.objects.bulk_create(completions, batch_size=5000)


def baseline_build(heldout_fraction: float):
    """Everything through prefetch_related, then the same merge as the real builder."""
    from labeling.models import Labeling, LabelingTask
    from training import datasets

    gold = dict(
        LabelingTask.objects.filter(gold_ratings__isnull=False).values_list(
            "solution_id", "gold_ratings"
        )
    )
    by_solution = defaultdict(list)
    solutions = {}
    for labeling in Labeling.objects.exclude(finish_reason="bad_problem").prefetch_related(
        "steps__completions", "solution__steps", "solution__problem"
    ):
        solutions[labeling.solution_id] = labeling.solution
        for step in labeling.steps.all():
            comps = list(step.completions.all())
            by_solution[labeling.solution_id].append((
                labeling.solution_id, labeling.id, step.position, step.chosen_completion,
                step.has_human_completion, step.human_completion_rating,
                [c.text for c in comps], [c.rating for c in comps], [c.position for c in comps],
            ))  # fmt: skip
    train, held, stats = [], [], Counter()
    for solution_id in sorted(by_solution):
        solution = solutions[solution_id]
        made = datasets._solution_examples(
            problem_id=str(solution.problem_id),
            problem_text=solution.problem.text,
            grade=solution.grade,
            step_texts=[s.text for s in solution.steps.all()],
            rows=sorted(by_solution[solution_id], key=lambda r: (r[1], r[2])),
            gold=gold.get(solution_id),
            stats=stats,
        )
        key = solution.problem.source_id or str(solution.problem_id)
        (held if datasets.is_heldout(key, heldout_fraction) else train).extend(made)
    return train, held


def measure(fn):
    from django.db import connection, reset_queries

    connection.force_debug_cursor = True
    reset_queries()
    started = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - started
    queries = len(connection.queries)
    connection.force_debug_cursor = False
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return result, {"seconds": round(seconds, 3), "queries": queries, "peak_mib": round(peak, 1)}


def bench_scores(n: int) -> dict:
    from django.db import transaction

    from labeling.models import Solution
    from training.models import PRMVersion, SolutionScore

    version = PRMVersion.objects.create(name=f"bench-{time.time()}", base_model="/m")
    ids = list(Solution.objects.order_by("id").values_list("id", flat=True)[:n])
    probs = [[0.1, 0.2, 0.7]] * 8

    def bulk():
        for start in range(0, len(ids), 128):
            with transaction.atomic():
                SolutionScore.objects.bulk_create(
                    [SolutionScore(prm_version=version, solution_id=i, score=0.5,
                                   step_probabilities=probs) for i in ids[start:start + 128]],
                    update_conflicts=True, unique_fields=["prm_version", "solution"],
                    update_fields=["score", "step_probabilities"],
                )  # fmt: skip

    def one_by_one():
        for i in ids:
            SolutionScore.objects.update_or_create(
                prm_version=version, solution_id=i,
                defaults={"score": 0.5, "step_probabilities": probs},
            )  # fmt: skip

    out = {}
    for name, fn in (("bulk_upsert", bulk), ("update_or_create", one_by_one)):
        SolutionScore.objects.filter(prm_version=version).delete()
        started = time.perf_counter()
        fn()  # first write: inserts
        fn()  # rerun: updates (scoring is idempotent)
        out[name] = round(time.perf_counter() - started, 3)
    out["ratio"] = round(out["update_or_create"] / out["bulk_upsert"], 1)
    out["rows"] = len(ids)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", type=int, default=400)
    parser.add_argument("--labelings-per-solution", type=int, default=2)
    parser.add_argument("--score-rows", type=int, default=1000)
    args = parser.parse_args()

    import os

    os.environ["DATABASE_URL"] = recreate_database(DB_NAME)
    setup_django()
    from training.datasets import build_training_data

    populate(args.problems, args.labelings_per_solution)
    streamed, streamed_stats = measure(lambda: build_training_data(heldout_fraction=0.1))
    (train, held), baseline_stats = measure(lambda: baseline_build(0.1))
    assert [s.ratings for s in streamed.train] == [s.ratings for s in train], "outputs differ"
    assert len(streamed.heldout) == len(held)
    report = {
        "solutions": args.problems * 4,
        "labelings": args.problems * 4 * args.labelings_per_solution,
        "examples": len(streamed.train) + len(streamed.heldout),
        "streamed": streamed_stats,
        "prefetch_baseline": baseline_stats,
        "time_ratio": round(baseline_stats["seconds"] / streamed_stats["seconds"], 2),
        "memory_ratio": round(baseline_stats["peak_mib"] / streamed_stats["peak_mib"], 2),
        "score_writes": bench_scores(args.score_rows),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
