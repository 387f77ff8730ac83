"""The synthetic world's quality table: best-of-N with a PRM, an ORM and majority vote.

    python benchmarks/synthetic_quality.py [--train-problems 12000] [--test-problems 40] [--threads 1]

A tiny Llama (64 wide, 3 layers, 4 heads) is trained twice on the same solutions of the training
problems (one sample each, most with a mistake): once with step labels (PRM), once with
final-answer correctness only (ORM, label at every step, read at the last). Each held-out
problem gets 64 sampled solutions; best-of-N draws N of them (400 random subsets per N), picks
by PRM score (product of step goodness, the paper's; the minimum too), ORM score, or the most
common answer, and counts the problems solved. Also reported, from the same scores: voting
weighted by the PRM's product score (the answer with the largest summed score wins), and why the
PRM's top pick goes wrong (see BENCHMARKS.md): right-step goodness and first-error AUROC per
operation, and in how many problems some wrong sample outscores every right one.
The training data is built here, straight from the synthetic world (phase-2 ratings, no
branches): ``training.datasets`` is not on this path.
"""

from __future__ import annotations

import argparse
import math
import pickle
import random
import re
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from training.prm.config import TrainConfig  # noqa: E402
from training.prm.evaluate import (  # noqa: E402
    _auroc,
    best_of_n,
    candidates_from,
    step_metrics,
)
from training.prm.score import RewardModelScorer, SolutionScores  # noqa: E402
from training.prm.synthetic import build_tiny_backbone, make_world, mistake_aurocs  # noqa: E402
from training.prm.train import train_reward_model  # noqa: E402

NS = (1, 2, 4, 8, 16, 32, 64)


def goodness(p) -> float:
    return float(p[1] + p[2])


def step_kind(step: str, index: int, count: int) -> str:
    """opening, restatement, final, or the operation's sign."""
    if index == 0:
        return "opening"
    if step.startswith("So far"):
        return "restatement"
    if index == count - 1:
        return "final"
    sign = re.search(r" ([+\-*/]) ", step)
    return sign.group(1) if sign else "?"


def weighted_vote(test, scores, *, trials: int, seed: int = 0) -> dict[int, float]:
    """Best-of-N by answer: each answer collects the summed scores of its samples; the answer
    with the largest sum wins (ties: expected value of a uniform pick)."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(test):
        groups[s.problem_id].append(i)
    rng = random.Random(seed)
    table = {}
    for n in NS:
        total = 0.0
        for members in groups.values():
            exact = len(members) <= n
            for _ in range(1 if exact else trials):
                sample = members if exact else rng.sample(members, n)
                tally: dict[str, float] = defaultdict(float)
                for i in sample:
                    tally[test[i].answer] += scores[i]
                top = max(tally.values())
                tied = [a for a, v in tally.items() if v == top]
                right = {test[i].answer for i in sample if test[i].is_correct}
                total += (trials if exact else 1) * sum(a in right for a in tied) / len(tied)
        table[n] = total / (trials * len(groups))
    return table


def diagnose(test, prm_probs, solution_scores: dict[str, list[float]]) -> list[str]:
    """Where the PRM's top pick goes wrong (printed lines)."""
    right: dict[str, list[float]] = defaultdict(list)
    missed: dict[tuple[str, str], list[float]] = defaultdict(list)
    for solution, probs in zip(test, prm_probs, strict=True):
        first = solution.ratings.index(-1) if -1 in solution.ratings else None
        for index, (step, p) in enumerate(zip(solution.steps, probs, strict=False)):
            kind = step_kind(step, index, len(solution.steps))
            if first is None or index < first:
                right[kind].append(goodness(p))
            elif index == first:
                missed[(solution.mistake or "?", kind)].append(goodness(p))
    lines = ["right steps (before any error), median goodness by kind:"]
    lines.append(
        "  "
        + ", ".join(
            f"{kind} {sorted(v)[len(v) // 2]:.3f} (n={len(v)})" for kind, v in sorted(right.items())
        )
    )
    lines.append("first wrong step vs right steps of the same kind, AUROC (share >= 0.8 goodness):")
    parts = []
    for (mistake, kind), values in sorted(missed.items()):
        if len(values) < 10 or kind not in right:
            continue
        auroc = _auroc([1] * len(right[kind]) + [0] * len(values), right[kind] + values)
        share = sum(v >= 0.8 for v in values) / len(values)
        parts.append(f"{mistake} {kind} {auroc:.2f} ({share:.0%})")
    lines.append("  " + ", ".join(parts))
    groups: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(test):
        groups[s.problem_id].append(i)
    for method, scores in solution_scores.items():
        beaten = 0
        for members in groups.values():
            best_right = max((scores[i] for i in members if test[i].is_correct), default=None)
            if best_right is not None and any(
                scores[i] > best_right for i in members if not test[i].is_correct
            ):
                beaten += 1
        lines.append(
            f"{method}: in {beaten} of {len(groups)} problems some wrong sample outscores every "
            "right one"
        )
    return lines


def train_and_score(args, train, test) -> dict[str, list[SolutionScores]]:
    scores = {}
    with tempfile.TemporaryDirectory() as tmp:
        backbone = build_tiny_backbone(
            f"{tmp}/backbone", hidden_size=args.hidden, num_layers=args.layers, num_heads=args.heads
        )
        for objective in ("prm", "orm"):
            config = TrainConfig(
                backbone,
                f"{tmp}/{objective}",
                objective=objective,
                epochs=args.epochs,
                learning_rate=args.learning_rate,
                batch_tokens=1024,
                max_length=256,
            )
            result = train_reward_model(train, config)
            scorer = RewardModelScorer.from_checkpoint(result.checkpoint_dir, device="cpu")
            scores[objective] = scorer.score([(s.problem, s.steps) for s in test])
    return scores


def _rescore(objective: str, probs) -> SolutionScores:
    """A saved model's solution score from its step probabilities, as the scorer computes it."""
    if objective == "orm":
        return SolutionScores(probs, 1.0 - probs[-1][0])
    return SolutionScores(probs, math.prod(goodness(p) for p in probs))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train-problems", type=int, default=12000)
    parser.add_argument("--test-problems", type=int, default=40)
    parser.add_argument("--samples", type=int, default=64, help="solutions per test problem")
    parser.add_argument("--epochs", type=float, default=8.0)
    parser.add_argument("--trials", type=int, default=400)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument(
        "--save-scores", help="pickle the test solutions and both models' step probabilities here"
    )
    parser.add_argument(
        "--from-scores",
        help="skip training: report from a pickle written by --save-scores (same test world)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # One solution per training problem, most with a mistake: many problems generalise better
    # than many samples of few (those get memorised).
    train = make_world(args.train_problems, 1, seed=21, min_ops=2, max_ops=4, error_rate=1.0)
    # Different seed, different problems: nothing in the test set was trained on.
    test = make_world(args.test_problems, args.samples, seed=9021, min_ops=2, max_ops=4)
    started = time.perf_counter()
    if args.from_scores:
        with open(args.from_scores, "rb") as handle:
            saved = pickle.load(handle)
        test = saved["test"]
        scores = {k: [_rescore(k, probs) for probs in v] for k, v in saved["probs"].items()}
    else:
        scores = train_and_score(args, train, test)
    if args.save_scores:
        with open(args.save_scores, "wb") as handle:
            probs = {k: [s.step_probs for s in v] for k, v in scores.items()}
            pickle.dump({"test": test, "probs": probs}, handle)
    prm_min = [
        SolutionScores(s.step_probs, min(goodness(p) for p in s.step_probs)) for s in scores["prm"]
    ]
    table = best_of_n(
        candidates_from(test, {**scores, "prm_min": prm_min}), ns=NS, trials=args.trials
    )
    voted = weighted_vote(test, [s.score for s in scores["prm"]], trials=args.trials)
    step = step_metrics(scores["prm"], test)
    print(
        f"train: {len(train)} solutions of {args.train_problems} problems; test: "
        f"{args.test_problems} problems x {args.samples} solutions; "
        f"share correct {sum(bool(s.is_correct) for s in test) / len(test):.1%}; "
        f"{time.perf_counter() - started:.0f} s"
    )
    print(f"held-out PRM step AUROC {step['step_auroc']:.3f} on {step['n_steps']} steps")
    kinds = mistake_aurocs(scores["prm"], test)
    print("by mistake kind: " + ", ".join(f"{k} {v:.3f}" for k, v in kinds.items()))
    print("| N | PRM (product) | PRM (min) | ORM | majority vote | PRM-weighted vote |")
    print("|---|---|---|---|---|---|")
    for n in NS:
        print(
            f"| {n} | {table['prm'][n]:.1%} | {table['prm_min'][n]:.1%} | {table['orm'][n]:.1%} "
            f"| {table['majority'][n]:.1%} | {voted[n]:.1%} |"
        )
    solution_scores = {
        "PRM (product)": [s.score for s in scores["prm"]],
        "ORM": [s.score for s in scores["orm"]],
    }
    y = [int(bool(s.is_correct)) for s in test]
    for method, values in solution_scores.items():
        print(f"{method}: solution AUROC (all test solutions) {_auroc(y, values):.3f}")
    for line in diagnose(test, [s.step_probs for s in scores["prm"]], solution_scores):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
