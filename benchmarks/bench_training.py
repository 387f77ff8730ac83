"""Training throughput: this trainer vs the TRL PRMTrainer recipe, same model, data and machine.

    python benchmarks/bench_training.py [--problems 150] [--batch-size 16] [--threads 1]

trl==1.16.0 (the pinned version) no longer ships `PRMTrainer` (it lived in `trl.trainer` and
then `trl.experimental.prm`, and is gone from both), so the baseline rebuilds its recipe from
the same parts it was made of: `AutoModelForTokenClassification` + `DataCollatorForTokenClassification`
(pad to the longest row of a random batch of fixed size) + `transformers.Trainer`, labels -100
everywhere except each step's last token. To make the comparison about batching only:
  * both sides get exactly the same token ids and label positions (our `build_examples`), so the
    separator format and truncation are identical;
  * both heads have 3 classes (TRL's has 2; the head is a negligible share of the compute);
  * same backbone, learning rate, epochs, seed and thread count; one epoch each;
  * our token budget is set so that our batches hold about as many real tokens as the baseline's
    fixed-size batches (batch_size x mean length), so optimizer steps are comparable.
Figures: real (non-pad) tokens/s and labeled steps/s over the training loop only.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from training.prm.config import TrainConfig  # noqa: E402
from training.prm.data import build_examples  # noqa: E402
from training.prm.model import load_tokenizer  # noqa: E402
from training.prm.synthetic import build_tiny_backbone, make_world  # noqa: E402
from training.prm.train import train_reward_model  # noqa: E402


def run_baseline(backbone: str, examples, *, batch_size: int, lr: float, seed: int, out: str):
    from datasets import Dataset
    from transformers import (
        AutoModelForTokenClassification,
        DataCollatorForTokenClassification,
        Trainer,
        TrainingArguments,
    )

    tokenizer = load_tokenizer(backbone)
    model = AutoModelForTokenClassification.from_pretrained(
        backbone, num_labels=3, local_files_only=True
    )
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    rows = []
    for e in examples:
        labels = [-100] * len(e.input_ids)
        for position, target in zip(e.label_positions, e.targets, strict=True):
            labels[position] = max(range(3), key=lambda c, t=target: t[c])
        rows.append(
            {"input_ids": e.input_ids, "attention_mask": [1] * len(e.input_ids), "labels": labels}
        )
    dataset = Dataset.from_list(rows)
    args = TrainingArguments(
        output_dir=out,
        per_device_train_batch_size=batch_size,
        num_train_epochs=1,
        learning_rate=lr,
        seed=seed,
        report_to="none",
        save_strategy="no",
        logging_strategy="no",
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=DataCollatorForTokenClassification(tokenizer),
    )
    started = time.perf_counter()
    trainer.train()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--problems", type=int, default=150)
    parser.add_argument("--solutions", type=int, default=8, help="per problem")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # Solution lengths spread like real data (1 to 12 operations), which is where padding bites.
    world = make_world(args.problems, args.solutions, seed=3, min_ops=1, max_ops=12)
    with tempfile.TemporaryDirectory() as tmp:
        backbone = build_tiny_backbone(
            f"{tmp}/backbone", hidden_size=args.hidden, num_layers=args.layers, num_heads=2
        )
        tokenizer = load_tokenizer(backbone)
        examples = build_examples(world, tokenizer, max_length=1024)
        tokens = sum(len(e.input_ids) for e in examples)
        labeled = sum(len(e.label_positions) for e in examples)
        mean_len = tokens / len(examples)
        budget = int(args.batch_size * mean_len)
        results = {"ours": [], "baseline": []}
        padding = None
        for repeat in range(args.repeats):  # interleaved: background load hits both alike
            seconds = run_baseline(
                backbone,
                examples,
                batch_size=args.batch_size,
                lr=1e-3,
                seed=repeat,
                out=f"{tmp}/trl-{repeat}",
            )
            results["baseline"].append(seconds)
            config = TrainConfig(
                backbone,
                f"{tmp}/ours-{repeat}",
                epochs=1.0,
                learning_rate=1e-3,
                batch_tokens=budget,
                max_length=1024,
                seed=repeat,
            )
            metrics = train_reward_model(world, config).metrics
            assert metrics["tokens"] == tokens, (metrics["tokens"], tokens)
            results["ours"].append(metrics["seconds"])
            padding = metrics["padding_fraction"]
    lengths = sorted(len(e.input_ids) for e in examples)
    # Padding of the baseline's random fixed-size batches (the Trainer's sampler shuffles).
    shuffled = [len(e.input_ids) for e in examples]
    random.Random(0).shuffle(shuffled)
    chunks = [shuffled[i : i + args.batch_size] for i in range(0, len(shuffled), args.batch_size)]
    baseline_padding = 1 - tokens / sum(max(c) * len(c) for c in chunks)
    print(
        f"solutions={len(examples)} tokens={tokens} labeled_steps={labeled} "
        f"length min/median/max={lengths[0]}/{lengths[len(lengths) // 2]}/{lengths[-1]} "
        f"model=hidden{args.hidden}x{args.layers} threads={args.threads}"
    )
    for name in ("baseline", "ours"):
        t = statistics.median(results[name])
        label = "TRL PRMTrainer recipe" if name == "baseline" else "stepwise trainer     "
        print(f"{label}: {tokens / t:9.0f} tokens/s {labeled / t:8.1f} labeled steps/s ({t:.1f} s)")
    ratio = statistics.median(results["baseline"]) / statistics.median(results["ours"])
    print(
        f"speed-up: {ratio:.2f}x  (padding: ours {padding:.1%}, baseline ~{baseline_padding:.1%};"
        f" batch_tokens={budget}, baseline batch_size={args.batch_size})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
