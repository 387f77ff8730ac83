"""The synthetic world's quality table: best-of-N with a PRM, an ORM and majority vote.

    python benchmarks/synthetic_quality.py [--train-problems 12000] [--test-problems 40] [--threads 1]

A tiny Llama (64 wide, 3 layers, 4 heads) is trained twice on the same solutions of the training
problems (one sample each, most with a mistake): once with step labels (PRM), once with
final-answer correctness only (ORM, label at every step, read at the last). Each held-out
problem gets 64 sampled solutions; best-of-N draws N of them (400 random subsets per N), picks
by PRM score (product of step goodness), ORM score, or the most common answer, and counts the
problems solved.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from training.prm.config import TrainConfig  # noqa: E402
from training.prm.evaluate import best_of_n, candidates_from, step_metrics  # noqa: E402
from training.prm.score import RewardModelScorer  # noqa: E402
from training.prm.synthetic import build_tiny_backbone, make_world, mistake_aurocs  # noqa: E402
from training.prm.train import train_reward_model  # noqa: E402


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
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # One solution per training problem, most with a mistake: many problems generalise better
    # than many samples of few (those get memorised).
    train = make_world(args.train_problems, 1, seed=21, min_ops=2, max_ops=4, error_rate=1.0)
    # Different seed, different problems: nothing in the test set was trained on.
    test = make_world(args.test_problems, args.samples, seed=9021, min_ops=2, max_ops=4)
    started = time.perf_counter()
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
    table = best_of_n(
        candidates_from(test, scores), ns=(1, 2, 4, 8, 16, 32, 64), trials=args.trials
    )
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
    print("| N | PRM | ORM | majority vote |")
    print("|---|---|---|---|")
    for n in (1, 2, 4, 8, 16, 32, 64):
        print(
            f"| {n} | {table['prm'][n]:.1%} | {table['orm'][n]:.1%} | {table['majority'][n]:.1%} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
