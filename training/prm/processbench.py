"""First-error detection on a ProcessBench-format file, for any local reward-model checkpoint.

    python -m training.prm.processbench --model PATH --data FILE --threshold-from VALIDATION
    python -m training.prm.processbench --model PATH --data FILE --threshold 0.5

`--data` is a JSON list of {id, generator, problem, steps, final_answer_correct, label}, label
being the index of the earliest wrong step or -1. The benchmark's protocol: a step is called wrong
when its goodness falls below a threshold fixed beforehand, and F1 is reported on the whole split.
So the threshold is never tuned on the records it is reported on: either it is chosen (best
first-error F1) on other data named by `--threshold-from` (another ProcessBench-format split, or
a JSONL of `LabeledSolution` records with `problem`, `steps`, `ratings`, e.g. held-out platform
labels), which must share no problem with `--data`, or it is given with `--threshold`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .evaluate import choose_threshold, first_error_metrics, predict_first_error

if TYPE_CHECKING:
    from .score import RewardModelScorer, SolutionScores


def load_processbench(path: str, *, limit: int | None = None) -> list[dict[str, Any]]:
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


def _first_error(ratings: list[int | None], n_steps: int) -> int | None:
    """The first -1, else -1 when every step is rated; None when the ratings cannot tell."""
    for index, rating in enumerate(ratings):
        if rating == -1:
            return index
        if rating is None:
            return None
    return -1 if len(ratings) >= n_steps else None


def load_threshold_data(path: str) -> list[dict[str, Any]]:
    """Validation records {problem, steps, label} from a ProcessBench JSON list or a JSONL of
    `LabeledSolution`s; solutions whose first error is unknown (unrated steps before any -1) are
    left out."""
    text = Path(path).read_text()
    if text.lstrip().startswith("["):
        return load_processbench(path)
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            problem, steps, ratings = row["problem"], [str(s) for s in row["steps"]], row["ratings"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(
                f"{path}:{number}: expected a LabeledSolution with problem, steps, ratings ({exc})"
            ) from None
        label = _first_error(list(ratings), len(steps)) if steps else None
        if label is not None:
            records.append({"problem": problem, "steps": steps, "label": label})
    if not records:
        raise ValueError(f"{path}: no solution with a known first error to choose a threshold on")
    return records


def problem_text_key(problem: str) -> str:
    """A problem's identity across files: its text with whitespace runs collapsed."""
    return " ".join(problem.split())


def shared_problems(first: list[dict[str, Any]], second: list[dict[str, Any]]) -> int:
    """How many distinct problems (whitespace-normalised text) two record lists share."""
    keys = {problem_text_key(r["problem"]) for r in first}
    return len(keys & {problem_text_key(r["problem"]) for r in second})


def _score(
    scorer: RewardModelScorer, records: list[dict[str, Any]], batch_tokens: int | None
) -> list[SolutionScores]:
    return scorer.score(
        [(r["problem"], [str(s) for s in r["steps"]]) for r in records], batch_tokens=batch_tokens
    )


def threshold_from(
    scorer: RewardModelScorer,
    validation: list[dict[str, Any]],
    *,
    batch_tokens: int | None = None,
) -> dict[str, Any]:
    """The goodness threshold with the best first-error F1 on `validation`, and that F1."""
    scores = _score(scorer, validation, batch_tokens)
    labels = [int(r["label"]) for r in validation]
    threshold = choose_threshold(scores, labels)
    fitted = first_error_metrics(predict_first_error(scores, threshold), labels)
    return {"threshold": threshold, "validation_f1": fitted["f1"], "n_validation": len(labels)}


def evaluate_processbench(
    scorer: RewardModelScorer,
    records: list[dict[str, Any]],
    *,
    threshold: float,
    batch_tokens: int | None = None,
) -> dict[str, Any]:
    """First-error accuracies and F1 on every record, at a threshold fixed beforehand."""
    scores = _score(scorer, records, batch_tokens)
    predicted = predict_first_error(scores, threshold)
    result = first_error_metrics(predicted, [int(r["label"]) for r in records])
    result["threshold"] = threshold
    result["n"] = len(records)
    result["n_truncated"] = sum(getattr(s, "truncated", 0) > 0 for s in scores)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.prm.processbench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, help="reward-model checkpoint directory")
    parser.add_argument("--data", required=True, help="ProcessBench-format JSON file to report on")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N records")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--threshold-from",
        metavar="FILE",
        help="choose the threshold on this data (ProcessBench JSON or LabeledSolution JSONL); "
        "it must share no problem with --data",
    )
    source.add_argument("--threshold", type=float, help="fixed goodness threshold")
    parser.add_argument("--device", default=None)
    parser.add_argument(
        "--batch-tokens",
        type=int,
        default=None,
        help="tokens per forward (rows x longest row); default: the scorer's, 2048 on a CPU "
        "(activations stay in cache) and 16384 on a GPU",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    from .model import is_checkpoint
    from .score import RewardModelScorer

    if not Path(args.model).is_dir() or not is_checkpoint(args.model):
        parser.error(f"--model {args.model!r} is not a reward-model checkpoint directory")
    try:
        records = load_processbench(args.data, limit=args.limit)
        validation = load_threshold_data(args.threshold_from) if args.threshold_from else None
    except (OSError, ValueError) as exc:
        parser.error(str(exc))
    if validation is not None:
        shared = shared_problems(validation, records)
        if shared:
            parser.error(
                f"--threshold-from {args.threshold_from} shares {shared} problems with --data: "
                "the threshold must come from problems outside the evaluated split"
            )
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    scorer = RewardModelScorer.from_checkpoint(args.model, device=args.device)
    if validation is not None:
        chosen = threshold_from(scorer, validation, batch_tokens=args.batch_tokens)
        source_info = {"threshold_source": args.threshold_from, **chosen}
        threshold = chosen["threshold"]
    else:
        source_info, threshold = {"threshold_source": "fixed"}, args.threshold
    result = evaluate_processbench(
        scorer, records, threshold=threshold, batch_tokens=args.batch_tokens
    )
    json.dump(
        {"model": args.model, "data": args.data, **result, **source_info}, sys.stdout, indent=2
    )
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
