"""Scoring throughput: one pass over each whole solution vs one pass per step prefix.

    python benchmarks/bench_scoring.py [--solutions 48] [--repeats 3] [--threads 1]

Both sides use the same model, the same input format and the same length-grouped batching
(RewardModelScorer.step_probabilities); the baseline scores (problem, steps[:k+1]) for every k
and keeps the last step's probabilities, which is what a scorer without step separators in one
sequence has to do. The script also checks that both give the same probabilities.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from training.prm.model import new_reward_model  # noqa: E402
from training.prm.score import RewardModelScorer  # noqa: E402
from training.prm.synthetic import build_tiny_backbone, make_world  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--solutions", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    world = make_world(args.solutions, 1, seed=7, min_ops=8, max_ops=8)
    items = [(s.problem, s.steps[:10]) for s in world if len(s.steps) >= 10][: args.solutions]
    with tempfile.TemporaryDirectory() as tmp:
        backbone = build_tiny_backbone(
            f"{tmp}/backbone", hidden_size=args.hidden, num_layers=args.layers
        )
        model, tokenizer = new_reward_model(backbone, seed=0)
    scorer = RewardModelScorer(model, tokenizer, max_length=1024, device=args.device)
    prefixes = [(p, steps[: k + 1]) for p, steps in items for k in range(len(steps))]

    def whole() -> list:
        return scorer.step_probabilities(items)

    def per_prefix() -> list:
        return [probs[-1] for probs in scorer.step_probabilities(prefixes)]

    whole(), per_prefix()  # warm-up
    times = {"whole": [], "prefix": []}
    for _ in range(args.repeats):  # interleaved so background load hits both alike
        for name, fn in (("whole", whole), ("prefix", per_prefix)):
            started = time.perf_counter()
            result = fn()
            times[name].append(time.perf_counter() - started)
            if name == "whole":
                single = [p for probs in result for p in probs]
            else:
                prefix_probs = result
    worst = max(
        abs(a - b)
        for x, y in zip(single, prefix_probs, strict=True)
        for a, b in zip(x, y, strict=True)
    )
    n = len(items)
    t_whole, t_prefix = statistics.median(times["whole"]), statistics.median(times["prefix"])
    steps = sum(len(s) for _, s in items)
    print(f"solutions={n} steps/solution={steps / n:.1f} model=hidden{args.hidden}x{args.layers}")
    print(
        f"single pass : {n / t_whole:8.1f} solutions/s  ({t_whole:.3f} s, median of {args.repeats})"
    )
    print(f"per prefix  : {n / t_prefix:8.1f} solutions/s  ({t_prefix:.3f} s)")
    print(f"speed-up    : {t_prefix / t_whole:.2f}x   max |p_single - p_prefix| = {worst:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
