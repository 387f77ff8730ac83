"""Answer-grading throughput: ``labeling.grading.grade_answer`` against calling math-verify
directly (``verify(parse(reference), parse(given))`` per pair, no normalization, no cache).

    python benchmarks/bench_grading.py --pairs 100000

Builds a pool like the one an active-learning round grades: for every MATH-500 problem,
``pairs / 500`` samples whose answers are drawn from a few forms (the reference, rewrites of it,
perturbed values) or, for a third of them, a random integer, so some answers repeat and many
wrong ones do not. Grades the whole pool with
``grade_answer`` (cold caches) and a random subset of ``--baseline-pairs`` with plain
math-verify, and prints pairs/s of both, their ratio, and how often the two disagree on the
subset. Runs on the main thread (math-verify's signal timeouts on).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def build_pool(data: Path, pairs: int, seed: int) -> list[tuple[str, str]]:
    from tests.grading.rewrites import equal_rewrites, perturbed

    rows = [json.loads(line) for line in (data / "math500.jsonl").open(encoding="utf-8")]
    rng = random.Random(seed)
    per_problem = max(pairs // len(rows), 1)
    pool = []
    for row in rows:
        reference = row["answer"]
        forms = [reference, perturbed(reference), *equal_rewrites(reference)]
        # A couple of distinct wrong answers per problem, as samples tend to repeat mistakes.
        forms += [f"{reference}+{k}" for k in range(1, 3)]
        for _ in range(per_problem):
            # A third of the samples give some other number: many distinct wrong answers.
            given = str(rng.randint(0, 5000)) if rng.random() < 0.33 else rng.choice(forms)
            pool.append((given, reference))
    rng.shuffle(pool)
    return pool[:pairs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--baseline-pairs", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()

    import logging

    from math_verify import parse, verify

    from labeling.grading import grade_answer

    logging.getLogger("math_verify").setLevel(logging.ERROR)
    pool = build_pool(args.data_dir, args.pairs, args.seed)
    subset = random.Random(args.seed + 1).sample(pool, min(args.baseline_pairs, len(pool)))

    started = time.perf_counter()
    ours = [grade_answer(given, reference) for given, reference in pool]
    ours_seconds = time.perf_counter() - started

    started = time.perf_counter()
    plain = [verify(parse(f"${r}$"), parse(f"${g}$")) for g, r in subset]
    plain_seconds = time.perf_counter() - started

    graded = dict(zip(pool, ours, strict=True))
    disagreements = [
        (g, r, graded[(g, r)], p)
        for (g, r), p in zip(subset, plain, strict=True)
        if graded[(g, r)] != p
    ]
    ours_rate = len(pool) / ours_seconds
    plain_rate = len(subset) / plain_seconds
    distinct = len(set(pool))
    print(f"pool: {len(pool)} pairs ({distinct} distinct), {sum(ours)} graded equal")
    print("\n| grader | pairs | seconds | pairs/s | speed-up |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| math-verify per pair | {len(subset)} | {plain_seconds:.1f} | {plain_rate:,.0f} | 1.0 |"
    )
    print(
        f"| grade_answer | {len(pool)} | {ours_seconds:.1f} | {ours_rate:,.0f} | "
        f"{ours_rate / plain_rate:.1f} |"
    )
    print(f"\ndisagreements on the subset: {len(disagreements)} of {len(subset)}")
    for given, reference, mine, theirs in disagreements[:10]:
        print(f"  given {given!r} reference {reference!r}: ours {mine}, math-verify {theirs}")


if __name__ == "__main__":
    main()
