"""Training throughput: this trainer vs the strongest TRL-style baseline, same model, data and dtype.

    python benchmarks/bench_training.py                        # tiny Llama 64 x 2, 1,200 solutions
    python benchmarks/bench_training.py --model var/models/smollm2-135m-instruct --problems 6

Baseline. trl==1.16.0 (the pinned version) no longer ships `PRMTrainer` (it lived in `trl.trainer`,
then `trl.experimental.prm`, and is gone from both), so the baseline is its recipe rebuilt from the
parts it was made of, in the configuration a careful user would pick for speed:
  * `AutoModelForTokenClassification` (same backbone, 3 labels) + `DataCollatorForTokenClassification`
    (pads each batch to its longest row) + `transformers.Trainer`, labels -100 everywhere except
    each step's separator token;
  * `train_sampling_strategy="group_by_length"` (transformers' LengthGroupedSampler: random
    mega-batches of up to 50 batches, sorted by length inside), lengths precomputed;
  * the Trainer's default optimizer on torch >= 2.8, fused AdamW; no gradient checkpointing.
Same token budget: Trainer batches count rows, ours count tokens (rows x longest row <=
batch_tokens). The baseline's `per_device_train_batch_size` is set to ceil(solutions / our batches
per epoch), so both sides take the same number of optimizer steps and each step holds the same number
of real tokens on average. Both get exactly the same token ids and label positions (our
`build_examples`), the same backbone, learning rate, dtype (fp32 on CPU, bf16 autocast on CUDA),
seed, thread count and gradient clipping (1.0), one epoch each.

Measure: real (non-pad) tokens/s and labeled steps/s over the training loop only (ours: the
loop `train_reward_model` times; baseline: `on_train_begin` to `on_train_end`, so model loading
and the Trainer's set-up count on neither side). Both sides see the same tokens and steps, so
the speed-up is the ratio of loop times, by wall time and by CPU time of this process (with one
thread the CPU time is the work done, and it holds up better than wall time on a shared
machine). The two sides take turns (the first one alternates by round) and each round gives a
ratio; the median over rounds is reported.
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

from training.prm.config import TrainConfig  # noqa: E402
from training.prm.data import TrainingExample, build_examples, length_grouped_batches  # noqa: E402
from training.prm.model import load_tokenizer  # noqa: E402
from training.prm.synthetic import build_tiny_backbone, make_world  # noqa: E402
from training.prm.train import train_reward_model  # noqa: E402


def run_baseline(
    backbone: str,
    examples: list[TrainingExample],
    *,
    batch_size: int,
    lr: float,
    seed: int,
    out: str,
    bf16: bool,
) -> tuple[float, float, float]:
    """One epoch of the Trainer recipe: loop wall seconds, loop CPU seconds, padding fraction."""
    from datasets import Dataset
    from transformers import (
        AutoModelForTokenClassification,
        DataCollatorForTokenClassification,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    tokenizer = load_tokenizer(backbone)
    model = AutoModelForTokenClassification.from_pretrained(
        backbone, num_labels=3, local_files_only=True, dtype=torch.float32
    )
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    rows = []
    for e in examples:
        labels = [-100] * len(e.input_ids)
        for position, target in zip(e.label_positions, e.targets, strict=True):
            labels[position] = max(range(3), key=lambda c, t=target: t[c])
        rows.append(
            {
                "input_ids": e.input_ids,
                "attention_mask": [1] * len(e.input_ids),
                "labels": labels,
                "length": len(e.input_ids),
            }
        )
    dataset = Dataset.from_list(rows)
    args = TrainingArguments(
        output_dir=out,
        per_device_train_batch_size=batch_size,
        num_train_epochs=1,
        learning_rate=lr,
        max_grad_norm=1.0,
        seed=seed,
        train_sampling_strategy="group_by_length",
        length_column_name="length",
        bf16=bf16,
        report_to="none",
        save_strategy="no",
        logging_strategy="no",
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
        disable_tqdm=True,
    )

    class LoopClock(TrainerCallback):
        """Times the training loop only, and the padding of the batches it actually got."""

        def __init__(self) -> None:
            self.started = self.seconds = self.cpu_started = self.cpu_seconds = 0.0
            self.real = self.padded = 0

        def on_train_begin(self, args, state, control, **kwargs):
            self.started, self.cpu_started = time.perf_counter(), time.process_time()

        def on_train_end(self, args, state, control, **kwargs):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.seconds = time.perf_counter() - self.started
            self.cpu_seconds = time.process_time() - self.cpu_started

    clock = LoopClock()
    collator = DataCollatorForTokenClassification(tokenizer)

    def counting_collator(features):
        batch = collator(features)
        clock.real += int(batch["attention_mask"].sum())
        clock.padded += batch["attention_mask"].numel()
        return batch

    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=counting_collator,
        callbacks=[clock],
    )
    trainer.train()
    return clock.seconds, clock.cpu_seconds, 1.0 - clock.real / max(1, clock.padded)


def run_ours(world, config: TrainConfig) -> tuple[dict, float]:
    """`train_reward_model`'s metrics and the CPU seconds of its training loop, read from its
    progress messages ("training on ..." comes right before the loop, "saving checkpoint" after)."""
    marks: dict[str, float] = {}

    def progress(fraction: float, message: str) -> None:
        if message.startswith("training on"):
            marks["start"] = time.process_time()
        elif "end" not in marks and fraction >= 0.92:
            marks["end"] = time.process_time()

    metrics = train_reward_model(world, config, progress=progress).metrics
    return metrics, marks["end"] - marks["start"]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model",
        help="local HF model directory to fine-tune (full fine-tuning on both sides); "
        "default: a tiny Llama built from a config (--hidden x --layers)",
    )
    parser.add_argument("--problems", type=int, default=150, help="synthetic problems")
    parser.add_argument("--solutions", type=int, default=8, help="per problem")
    parser.add_argument(
        "--batch-rows",
        type=int,
        default=16,
        help="our token budget is this many rows of mean length; the baseline's batch size "
        "is then set to match our number of batches",
    )
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bf16 = torch.cuda.is_available()
    # Solution lengths spread like real data (1 to 12 operations), which is where padding bites.
    world = make_world(args.problems, args.solutions, seed=3, min_ops=1, max_ops=12)
    with tempfile.TemporaryDirectory() as tmp:
        if args.model:
            backbone, model_name = args.model, Path(args.model).name
        else:
            backbone = build_tiny_backbone(
                f"{tmp}/backbone", hidden_size=args.hidden, num_layers=args.layers, num_heads=2
            )
            model_name = f"llama hidden {args.hidden} x {args.layers} layers"
        tokenizer = load_tokenizer(backbone)
        examples = build_examples(world, tokenizer, max_length=1024)
        lengths = [len(e.input_ids) for e in examples]
        tokens = sum(lengths)
        labeled = sum(len(e.label_positions) for e in examples)
        budget = max(int(args.batch_rows * tokens / len(examples)), max(lengths))
        our_batches = len(length_grouped_batches(lengths, batch_tokens=budget, seed=0))
        batch_size = -(-len(examples) // our_batches)  # ceil: the same number of batches
        print(
            f"model: {model_name}; solutions={len(examples)} real tokens={tokens} "
            f"labeled steps={labeled}; lengths min/median/max={min(lengths)}/"
            f"{sorted(lengths)[len(lengths) // 2]}/{max(lengths)}; threads={args.threads}; "
            f"dtype={'bf16 autocast' if bf16 else 'fp32'}",
            flush=True,
        )
        print(
            f"ours: batch_tokens={budget} -> {our_batches} batches; baseline: batch size "
            f"{batch_size} -> {-(-len(examples) // batch_size)} batches",
            flush=True,
        )
        times: dict[str, list[float]] = {"baseline": [], "ours": []}
        cpu: dict[str, list[float]] = {"baseline": [], "ours": []}
        padding = {"baseline": 0.0, "ours": 0.0}
        for repeat in range(args.repeats):
            order = ("baseline", "ours") if repeat % 2 == 0 else ("ours", "baseline")
            for side in order:
                if side == "baseline":
                    seconds, cpu_seconds, padding["baseline"] = run_baseline(
                        backbone,
                        examples,
                        batch_size=batch_size,
                        lr=args.lr,
                        seed=repeat,
                        out=f"{tmp}/trl-{repeat}",
                        bf16=bf16,
                    )
                else:
                    config = TrainConfig(
                        backbone,
                        f"{tmp}/ours-{repeat}",
                        epochs=1.0,
                        learning_rate=args.lr,
                        batch_tokens=budget,
                        max_length=1024,
                        seed=repeat,
                    )
                    metrics, cpu_seconds = run_ours(world, config)
                    assert metrics["tokens"] == tokens, (metrics["tokens"], tokens)
                    seconds, padding["ours"] = metrics["seconds"], metrics["padding_fraction"]
                times[side].append(seconds)
                cpu[side].append(cpu_seconds)
            print(
                f"round {repeat + 1}: wall baseline {times['baseline'][-1]:.2f} s, ours "
                f"{times['ours'][-1]:.2f} s ({times['baseline'][-1] / times['ours'][-1]:.2f}x); "
                f"CPU baseline {cpu['baseline'][-1]:.2f} s, ours {cpu['ours'][-1]:.2f} s "
                f"({cpu['baseline'][-1] / cpu['ours'][-1]:.2f}x)",
                flush=True,
            )
    names = {"baseline": "Trainer recipe, group_by_length", "ours": "stepwise trainer"}
    for side in ("baseline", "ours"):
        t, c = statistics.median(times[side]), statistics.median(cpu[side])
        print(
            f"{names[side]:32s}: {tokens / t:8.0f} real tokens/s, {labeled / t:7.1f} labeled "
            f"steps/s by wall time (median {t:.2f} s); {tokens / c:8.0f} and {labeled / c:7.1f} "
            f"per CPU second (median {c:.2f} s); padding {padding[side]:.1%}"
        )
    for label, clock in (("wall time", times), ("CPU time", cpu)):
        ratios = [b / o for b, o in zip(clock["baseline"], clock["ours"], strict=True)]
        print(
            f"speed-up by {label}: {statistics.median(ratios):.2f}x, median of {len(ratios)} "
            f"rounds ({', '.join(f'{r:.2f}' for r in ratios)})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
