"""Retrain time of a real PRM between rounds: the default options vs full fine-tuning, one run.

    python benchmarks/bench_retrain.py                      # SmolLM2, demo-sized labels, 2 threads
    python benchmarks/bench_retrain.py --full-batches 4 --lora-batches 4 --heldout 0.2

Data: the demo's labeled pool size, built from ../shared/data/processbench_gsm8k.json (400 GSM8K
solutions whose label is the first wrong step: steps before it rated +1, it -1, later steps not
rated; -1 = every step +1), split by problem with the service's held-out share (10 %).
Backbone: SmolLM2-135M-Instruct from <STEPWISE_MODEL_DIR>/smollm2-135m-instruct (converted first
if missing, see training/prm/backbones.py).

Arms, same process, same threads, same training examples:
  * defaults: `train_reward_model` with the service's default options (STEPWISE_TRAIN_DEFAULTS in
    config/settings.py, read from there), timed end to end as the Celery task runs it:
    loading, the frozen layers' one-time pass, every epoch, held-out scoring, the checkpoint.
  * full fine-tuning: the whole 30-layer backbone, every weight trained (no backbone_layers, no
    train_layers). Far too slow to run whole here, so it trains --full-batches batches of
    --partial-batch-tokens tokens; its time per real token over them, times the tokens the
    defaults trained on (all epochs), is its extrapolated training time, to which the defaults'
    own loading, scoring and saving time is added (an underestimate for full fine-tuning: its
    checkpoint scores the held-out split with 30 layers, not 18).
  * LoRA (peft, rank 8 on every projection of every layer of the 30, the rest frozen): the same
    extrapolation from --lora-batches batches. LoRA is not an option of the trainer; this arm
    says why (its backward still runs through every layer).
The extrapolated arms are labelled as such in the output.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from training.prm.backbones import default_model_dir, ensure_local_model  # noqa: E402
from training.prm.config import TrainConfig  # noqa: E402
from training.prm.data import (  # noqa: E402
    LabeledSolution,
    build_examples,
    length_grouped_batches,
    split_by_problem,
)
from training.prm.train import train_reward_model  # noqa: E402


def service_defaults() -> dict:
    """STEPWISE_TRAIN_DEFAULTS as the Django service applies them (config/settings.py)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.conf import settings

    return dict(settings.STEPWISE_TRAIN_DEFAULTS)


def processbench_solutions(path: Path) -> list[LabeledSolution]:
    out = []
    for record in json.loads(path.read_text()):
        steps = [str(s) for s in record["steps"]]
        first_wrong = int(record["label"])
        if first_wrong < 0:
            ratings: list[int | None] = [1] * len(steps)
        else:
            ratings = [1] * first_wrong + [-1] + [None] * (len(steps) - first_wrong - 1)
        out.append(
            LabeledSolution(
                problem=record["problem"],
                steps=steps,
                ratings=ratings,
                problem_id=str(record.get("id", len(out))),
                is_correct=bool(record.get("final_answer_correct")),
            )
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/processbench_gsm8k.json"))
    parser.add_argument("--model", default=None, help="backbone directory (default: SmolLM2)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--full-batches", type=int, default=2)
    parser.add_argument("--lora-batches", type=int, default=2)
    parser.add_argument(
        "--partial-batch-tokens", type=int, default=2048, help="token budget of those batches"
    )
    parser.add_argument("--heldout", type=float, default=0.1)
    parser.add_argument("--limit", type=int, default=None, help="first N solutions only")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model_dir = args.model or str(
        ensure_local_model(
            default_model_dir(os.environ.get("STEPWISE_MODEL_DIR", ROOT / "var/models"))
        )
    )
    solutions = processbench_solutions(Path(args.data))[: args.limit]
    train, heldout = split_by_problem(solutions, held_out_fraction=args.heldout, seed=0)
    print(f"{len(train)} training / {len(heldout)} held-out solutions; backbone {model_dir}")
    print(f"threads {args.threads}; load average {os.getloadavg()[0]:.1f}", flush=True)
    results: dict = {"threads": args.threads, "train": len(train), "heldout": len(heldout)}
    defaults = service_defaults()

    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig(model_dir, f"{tmp}/defaults", **defaults)
        started = time.perf_counter()
        run = train_reward_model(train, config, validation=heldout, progress=_printer("defaults"))
        total = time.perf_counter() - started
        m = run.metrics
        overhead = total - m["seconds"] - m["frozen_cache_seconds"]
        results["defaults"] = {
            "options": defaults,
            "total_s": total,
            "frozen_pass_s": m["frozen_cache_seconds"],
            "train_loop_s": m["seconds"],
            "load_score_save_s": overhead,
            "tokens_trained": m["tokens"],
            "trainable_parameters": m["trainable_parameters"],
            "val_step_auroc": m.get("val_step_auroc"),
        }
        trained_tokens = m["tokens"]  # real tokens over every epoch of the defaults

        for arm, batches, extra in (
            ("full fine-tuning", args.full_batches, {}),
            ("LoRA r=8 (peft)", args.lora_batches, {"lora": 8}),
        ):
            if batches <= 0:
                continue
            seconds, tokens = _partial(
                model_dir, train, config, batches, tmp, args.partial_batch_tokens, **extra
            )
            per_token = seconds / tokens
            results[arm] = {
                "measured_batches": batches,
                "measured_tokens": tokens,
                "measured_s": seconds,
                "train_loop_s_extrapolated": per_token * trained_tokens,
                "total_s_extrapolated": per_token * trained_tokens + overhead,
            }
            print(f"{arm}: {tokens} tokens in {seconds:.1f} s", flush=True)

    d = results["defaults"]
    print()
    print("| arm | training loop | one-time frozen pass | load + score + save | total | ratio |")
    print("|---|---|---|---|---|---|")
    print(
        f"| defaults {defaults} | {d['train_loop_s']:.0f} s | {d['frozen_pass_s']:.0f} s | "
        f"{d['load_score_save_s']:.0f} s | {d['total_s']:.0f} s | 1.00x |"
    )
    for arm in ("full fine-tuning", "LoRA r=8 (peft)"):
        if arm in results:
            r = results[arm]
            print(
                f"| {arm} (extrapolated from {r['measured_batches']} batches) | "
                f"{r['train_loop_s_extrapolated']:.0f} s | - | {d['load_score_save_s']:.0f} s | "
                f"{r['total_s_extrapolated']:.0f} s | {r['total_s_extrapolated'] / d['total_s']:.1f}x |"
            )
    print(f"\nheld-out step AUROC (defaults): {d['val_step_auroc']}")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


def _partial(model_dir, train, config, batches, tmp, batch_tokens, *, lora=0):
    """Seconds and real tokens of the first `batches` training batches of one arm: the whole
    30-layer backbone, every layer trained (full fine-tuning) or LoRA on every layer."""
    from training.prm.model import load_tokenizer

    tokenizer = load_tokenizer(model_dir)
    examples = build_examples(train, tokenizer, objective="prm", max_length=config.max_length)
    lengths = [len(e.input_ids) for e in examples]
    per_epoch = len(length_grouped_batches(lengths, batch_tokens=batch_tokens, seed=0))
    partial = TrainConfig(
        model_dir, f"{tmp}/partial", epochs=batches / per_epoch,
        learning_rate=config.learning_rate, batch_tokens=batch_tokens, frozen_cache_gb=0,
    )  # fmt: skip
    if not lora:
        run = train_reward_model(train, partial)
        return run.metrics["seconds"], run.metrics["tokens"]
    return _lora_partial(model_dir, examples, lengths, partial, batches, rank=lora)


def _lora_partial(model_dir, examples, lengths, config, batches, *, rank):
    """The trainer's loop, reduced to its core, around a peft LoRA backbone."""
    from peft import LoraConfig, get_peft_model

    from training.prm.data import collate
    from training.prm.model import new_reward_model
    from training.prm.train import soft_cross_entropy

    model, tokenizer = new_reward_model(model_dir)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    model.backbone = get_peft_model(
        model.backbone, LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=targets)
    )
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate)
    order = length_grouped_batches(lengths, batch_tokens=config.batch_tokens, seed=config.seed)
    tokens = 0
    started = time.perf_counter()
    for batch in order[:batches]:
        collated = collate([examples[i] for i in batch.indices], pad_id=tokenizer.pad_token_id)
        logits = model(collated.input_ids, None, collated.rows, collated.positions)
        soft_cross_entropy(logits, collated.targets, collated.weights).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += collated.tokens
    return time.perf_counter() - started, tokens


def _printer(arm: str):
    started = time.perf_counter()

    def progress(fraction: float, message: str) -> None:
        print(
            f"  {arm} {time.perf_counter() - started:6.0f} s [{fraction:5.1%}] {message}",
            flush=True,
        )

    return progress


if __name__ == "__main__":
    raise SystemExit(main())
