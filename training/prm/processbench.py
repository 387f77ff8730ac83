"""First-error detection on a ProcessBench-format file, for any local reward-model checkpoint.

    python -m training.prm.processbench --model PATH --data FILE [--limit N]

The file is a JSON list of {id, generator, problem, steps, final_answer_correct, label}, label
being the index of the earliest wrong step or -1. The records are shuffled once (seeded) and split
in two: the goodness threshold is chosen on the validation half and F1 is reported on the other,
so the reported figure is not tuned on itself. `--threshold` skips the choice (then every record
is evaluated).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from .evaluate import choose_threshold, first_error_metrics, predict_first_error


def load_processbench(path: str, *, limit: int | None = None) -> list[dict]:
    with open(path) as fh:
        records = json.load(fh)
    if not isinstance(records, list):
        raise ValueError(f"{path}: expected a JSON list of records")
    for index, record in enumerate(records):
        missing = {"problem", "steps", "label"} - set(record)
        if missing:
            raise ValueError(f"{path}: record {index} lacks {sorted(missing)}")
        if not isinstance(record["steps"], list) or not record["steps"]:
            raise ValueError(f"{path}: record {index} has no steps")
        if not -1 <= int(record["label"]) < len(record["steps"]):
            raise ValueError(f"{path}: record {index} label {record['label']} is out of range")
    return records[:limit] if limit else records


def evaluate_processbench(
    scorer,
    records: list[dict],
    *,
    threshold: float | None = None,
    validation_fraction: float = 0.5,
    seed: int = 0,
    batch_tokens: int = 16384,
) -> dict:
    scores = scorer.score(
        [(r["problem"], [str(s) for s in r["steps"]]) for r in records], batch_tokens=batch_tokens
    )
    labels = [int(r["label"]) for r in records]
    order = list(range(len(records)))
    n_val = 0
    if threshold is None:
        random.Random(seed).shuffle(order)
        n_val = max(1, int(len(order) * validation_fraction))
        val, test = order[:n_val], order[n_val:] or order[:n_val]
        threshold = choose_threshold([scores[i] for i in val], [labels[i] for i in val])
        validation = first_error_metrics(
            predict_first_error([scores[i] for i in val], threshold), [labels[i] for i in val]
        )
    else:
        test, validation = order, None
    predicted = predict_first_error([scores[i] for i in test], threshold)
    result = first_error_metrics(predicted, [labels[i] for i in test])
    result["threshold"] = threshold
    result["n_test"] = len(test)
    if validation is not None:
        result["validation_f1"] = validation["f1"]
        result["n_validation"] = n_val
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.prm.processbench", description=__doc__
    )
    parser.add_argument("--model", required=True, help="reward-model checkpoint directory")
    parser.add_argument("--data", required=True, help="ProcessBench-format JSON file")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N records")
    parser.add_argument("--threshold", type=float, default=None, help="fixed goodness threshold")
    parser.add_argument("--validation-fraction", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    from .model import is_checkpoint
    from .score import RewardModelScorer

    if not Path(args.model).is_dir() or not is_checkpoint(args.model):
        parser.error(f"--model {args.model!r} is not a reward-model checkpoint directory")
    if not 0 < args.validation_fraction < 1:
        parser.error("--validation-fraction must be between 0 and 1")
    try:
        records = load_processbench(args.data, limit=args.limit)
    except (OSError, ValueError) as exc:
        parser.error(str(exc))
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    scorer = RewardModelScorer.from_checkpoint(args.model, device=args.device)
    result = evaluate_processbench(
        scorer,
        records,
        threshold=args.threshold,
        validation_fraction=args.validation_fraction,
        seed=args.seed,
    )
    json.dump({"model": args.model, "data": args.data, **result}, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
