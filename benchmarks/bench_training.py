"""Training throughput: this trainer vs the strongest TRL-style baseline, same model, data and dtype.

    python benchmarks/bench_training.py                        # tiny Llama 64 x 2, 1,200 solutions
    python benchmarks/bench_training.py --model var/models/smollm2-135m-instruct --problems 8 \
        --batch-rows 8 --lr 1e-5

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

Measure: real (non-pad) tokens/s (and labeled steps/s) over the training loop only (ours: the
loop `train_reward_model` times; baseline: `on_train_begin` to `on_train_end`, so model loading
and the Trainer's set-up count on neither side), by wall time and by CPU time of this process
(with one thread the CPU time is the work done, and it holds up better than wall time on a
shared machine). Both sides train the same tokens in one epoch, so the speed-up is the ratio of
loop times. (Why one whole epoch, even for a big model on a small data set: the Trainer's sampler
puts its longest batch first, so the first K batches of each side differ in size and a K-step
comparison measures batch sizes.) The two sides take turns (the first one alternates by round);
each round gives a ratio and the median over rounds is reported.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from training.prm.config import TrainConfig  # noqa: E402
from training.prm.data import (  # noqa: E402
    TrainingExample,
    build_examples,
    length_grouped_batches,
    problem_grouped_batches,
)
from training.prm.model import load_tokenizer  # noqa: E402
from training.prm.synthetic import build_tiny_backbone, make_world  # noqa: E402
from training.prm.train import train_reward_model  # noqa: E402


@dataclass
class Run:
    """One side's training loop: what it trained on and how long it took."""

    tokens: int  # real (non-pad) tokens
    labeled: int  # labeled steps
    wall: float
    cpu: float
    padding: float  # share of the padded batches that was padding
    computed: int  # tokens the forward passes ran on (padding in; a shared problem once)

    def rate(self, clock: str) -> float:
        return self.tokens / (self.wall if clock == "wall" else self.cpu)


def run_baseline(
    backbone: str,
    examples: list[TrainingExample],
    *,
    batch_size: int,
    lr: float,
    seed: int,
    out: str,
    bf16: bool,
) -> Run:
    """The Trainer recipe for one epoch."""
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
        """Times the training loop only, and counts what its batches held."""

        def __init__(self) -> None:
            self.started = self.seconds = self.cpu_started = self.cpu_seconds = 0.0
            self.real = self.padded = self.labeled = 0

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
        clock.labeled += int((batch["labels"] != -100).sum())
        return batch

    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=counting_collator,
        callbacks=[clock],
    )
    trainer.train()
    padding = 1.0 - clock.real / max(1, clock.padded)
    return Run(clock.real, clock.labeled, clock.seconds, clock.cpu_seconds, padding, clock.padded)


def run_ours(world, config: TrainConfig) -> Run:
    """`train_reward_model`; the CPU seconds of its loop are read between its progress messages
    ("training on ..." comes right before the loop, the next one at >= 92% after it)."""
    marks: dict[str, float] = {}

    def progress(fraction: float, message: str) -> None:
        if message.startswith("training on"):
            marks["start"] = time.process_time()
        elif "end" not in marks and fraction >= 0.92:
            marks["end"] = time.process_time()

    m = train_reward_model(world, config, progress=progress).metrics
    cpu_seconds = marks["end"] - marks["start"]
    return Run(
        m["tokens"],
        m["labeled_steps"],
        m["seconds"],
        cpu_seconds,
        m["padding_fraction"],
        m["computed_tokens"],
    )


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
    parser.add_argument(
        "--share-problems",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="ours packs whole problems per batch (the trainer's default); off: padded rows",
    )
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
        budget = max(int(args.batch_rows * tokens / len(examples)), max(lengths))
        if args.share_problems:
            problems = [tuple(e.input_ids[: e.prefix_length]) for e in examples]
            our_batches = len(
                problem_grouped_batches(problems, lengths, batch_tokens=budget, seed=0)
            )
        else:
            our_batches = len(length_grouped_batches(lengths, batch_tokens=budget, seed=0))
        batch_size = -(-len(examples) // our_batches)  # ceil: the same number of batches
        print(
            f"model: {model_name}; solutions={len(examples)} real tokens={tokens} "
            f"labeled steps={sum(len(e.label_positions) for e in examples)}; lengths "
            f"min/median/max={min(lengths)}/{sorted(lengths)[len(lengths) // 2]}/{max(lengths)}; "
            f"threads={args.threads}; dtype={'bf16 autocast' if bf16 else 'fp32'}",
            flush=True,
        )
        print(
            f"ours: batch_tokens={budget} -> {our_batches} batches an epoch; baseline: batch "
            f"size {batch_size} -> {-(-len(examples) // batch_size)}; one epoch each",
            flush=True,
        )
        runs: dict[str, list[Run]] = {"baseline": [], "ours": []}
        for repeat in range(args.repeats):
            order = ("baseline", "ours") if repeat % 2 == 0 else ("ours", "baseline")
            for side in order:
                if side == "baseline":
                    run = run_baseline(
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
                        share_problems=args.share_problems,
                    )
                    run = run_ours(world, config)
                    assert run.tokens == tokens, (run.tokens, tokens)
                runs[side].append(run)
            b, o = runs["baseline"][-1], runs["ours"][-1]
            print(
                f"round {repeat + 1}: baseline {b.tokens} tokens in {b.wall:.2f} s wall, "
                f"{b.cpu:.2f} s CPU; ours {o.tokens} tokens in {o.wall:.2f} s wall, "
                f"{o.cpu:.2f} s CPU; speed-up {o.rate('wall') / b.rate('wall'):.2f}x wall, "
                f"{o.rate('cpu') / b.rate('cpu'):.2f}x CPU",
                flush=True,
            )
    names = {"baseline": "Trainer recipe, group_by_length", "ours": "stepwise trainer"}
    for side in ("baseline", "ours"):
        done = runs[side]
        wall = statistics.median(r.tokens / r.wall for r in done)
        cpu = statistics.median(r.tokens / r.cpu for r in done)
        steps_cpu = statistics.median(r.labeled / r.cpu for r in done)
        print(
            f"{names[side]:32s}: {wall:8.0f} real tokens/s by wall time; per CPU second "
            f"{cpu:8.0f} real tokens, {steps_cpu:7.1f} labeled steps; "
            f"padding {statistics.median(r.padding for r in done):.1%}; computed tokens "
            f"{statistics.median(r.computed for r in done):.0f} "
            f"({statistics.median(r.computed / r.tokens for r in done):.3f} per real token)"
        )
    for clock in ("wall", "cpu"):
        ratios = [
            o.rate(clock) / b.rate(clock)
            for b, o in zip(runs["baseline"], runs["ours"], strict=True)
        ]
        print(
            f"speed-up in real tokens/s by {'wall' if clock == 'wall' else 'CPU'} time: "
            f"{statistics.median(ratios):.2f}x, median of {len(ratios)} rounds "
            f"({', '.join(f'{r:.2f}' for r in ratios)})"
        )
    # The same per token computed (padding in, a shared problem once) per CPU second. What is
    # left is the cost per token of the two implementations, not their batching.
    computed = [
        (o.computed / o.cpu) / (b.computed / b.cpu)
        for b, o in zip(runs["baseline"], runs["ours"], strict=True)
    ]
    print(f"per computed token, CPU time: {statistics.median(computed):.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
