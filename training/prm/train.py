"""Train a process (or outcome) reward model on labeled solutions.

Reads top to bottom: encode each solution once, group by length under a token budget (padding
stays at a few percent), soft cross-entropy at step separators only, AdamW with linear warm-up
and decay, then an atomic checkpoint. Several processes (GPUs with NCCL, or CPU with gloo): run
under `torchrun` or `accelerate launch` (WORLD_SIZE > 1); each process takes every world_size-th
batch and accelerate all-reduces the gradients. With `--resume-dir` a resume state is written
every `--resume-every-steps` optimizer steps and a restarted run continues from it (resume.py).

    python -m training.prm.train --base-model DIR --output-dir DIR --data FILE.jsonl
    python -m training.prm.train --base-model DIR --output-dir DIR --synthetic 400
    torchrun --nproc_per_node 2 -m training.prm.train --base-model DIR --output-dir DIR ...
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .backbones import require_causal
from .config import TrainConfig, add_arguments, from_namespace
from .data import (
    Batch,
    LabeledSolution,
    TrainingExample,
    build_examples,
    collate,
    length_grouped_batches,
    problem_grouped_batches,
    split_by_problem,
)
from .model import (
    FrozenPrefixCache,
    RewardModel,
    decoder_layers,
    freeze_lower_layers,
    new_reward_model,
    packing_matches_plain,
    save_checkpoint,
    split_matches_full,
    trainable_parameters,
)
from .resume import Position, Resumer, run_fingerprint
from .score import RewardModelScorer, resolve_device
from .segments import MIN_SHARED_FRACTION, collate_packed, shared_fraction


@dataclass
class TrainResult:
    checkpoint_dir: str
    metrics: dict[str, Any]


def _accelerator(device: str | None = None) -> Any:
    """An `accelerate.Accelerator` when launched on several processes, else None.

    Launched by `torchrun` or `accelerate launch`. Without CUDA (or with device 'cpu') the
    processes all-reduce over gloo: accelerate picks its multi-CPU mode only when told `cpu=True`
    and would otherwise let every process train alone, so the process count is checked.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=(device or "").startswith("cpu") or not torch.cuda.is_available())
    if accelerator.num_processes != world:
        raise RuntimeError(
            f"WORLD_SIZE is {world} but accelerate set up {accelerator.num_processes} process(es)"
        )
    return accelerator


def soft_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Weighted mean over labeled steps of -sum_c target_c * log p_c (keeps soft labels intact)."""
    per_step = -(targets * torch.log_softmax(logits.float(), dim=-1)).sum(dim=-1)
    return (per_step * weights).sum() / weights.sum().clamp_min(1e-8)


def train_reward_model(
    train: list[LabeledSolution],
    config: TrainConfig,
    *,
    validation: list[LabeledSolution] | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> TrainResult:
    config.validate()
    report = progress or (lambda fraction, message: None)
    torch.manual_seed(config.seed)
    accelerator = _accelerator(config.device)
    device = accelerator.device if accelerator else resolve_device(config.device)
    bf16 = device.type == "cuda" if config.bf16 is None else config.bf16

    report(0.0, "loading model")
    model, tokenizer = new_reward_model(
        config.base_model, seed=config.seed, keep_layers=config.backbone_layers
    )
    # Step k's score must not see the steps after it: no bidirectional encoders (backbones.py).
    require_causal(model.backbone, where=config.base_model)
    frozen_layers = freeze_lower_layers(model, config.train_layers)
    layer_count = getattr(model.backbone.config, "num_hidden_layers", None)
    if config.gradient_checkpointing:
        model.backbone.gradient_checkpointing_enable(
            gradient_checkpointing_kwargs={"use_reentrant": False}
        )
    model.to(device).train()
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    examples = build_examples(
        train, tokenizer, objective=config.objective, max_length=config.max_length
    )
    if not examples:
        raise ValueError(
            f"no trainable steps: none of the {len(train)} solutions has a label for "
            f"objective {config.objective!r}"
        )
    lengths = [len(e.input_ids) for e in examples]
    batch_tokens = max(config.batch_tokens, max(lengths))
    # Packed batches (segments.py): whole problems, one row, no padding, each problem computed
    # once. Only where problems repeat enough to pay for it; checked on this model first.
    # Gradient checkpointing recomputes layers after the forward's attention layout has gone,
    # so it keeps padded rows.
    packing = (
        config.share_problems
        and not config.gradient_checkpointing
        and shared_fraction([e.input_ids for e in examples], [e.prefix_length for e in examples])
        >= MIN_SHARED_FRACTION
        and packing_matches_plain(model)
    )
    problems = [tuple(e.input_ids[: e.prefix_length]) for e in examples]

    def epoch_batches(seed: int) -> list[Batch]:
        if packing:
            return problem_grouped_batches(problems, lengths, batch_tokens=batch_tokens, seed=seed)
        return length_grouped_batches(lengths, batch_tokens=batch_tokens, seed=seed)

    per_epoch = len(epoch_batches(config.seed))
    world = accelerator.num_processes if accelerator else 1
    rank = accelerator.process_index if accelerator else 0
    if per_epoch < world:
        raise ValueError(
            f"{per_epoch} batch(es) per epoch cannot be shared by {world} processes: "
            "lower batch_tokens or use fewer processes"
        )
    # Batches per epoch of each process: a remainder that cannot go to all is left out.
    total_batches = max(1, math.ceil(config.epochs * (per_epoch // world)))
    total_updates = max(1, math.ceil(total_batches / config.gradient_accumulation))
    warmup = max(1, int(config.warmup_fraction * total_updates))

    cache = _frozen_prefix_cache(model, examples, config, device, pad_id, frozen_layers, report)
    optimizer = torch.optim.AdamW(
        trainable_parameters(model),
        lr=config.learning_rate,
        weight_decay=config.weight_decay,
        betas=(0.9, 0.95),
        # One fused kernel over all parameters instead of a loop of kernels per parameter (the
        # Trainer's default too): SmolLM2-135M on one CPU thread, 0.68 -> 0.15 s per step.
        fused=device.type in ("cpu", "cuda"),
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: min(
            (step + 1) / warmup, max(0.0, (total_updates - step) / max(1, total_updates - warmup))
        ),
    )
    # A lost attempt's state, when one matches this run, before the model is wrapped for DDP.
    resumer = Resumer(
        config.resume_dir,
        every_steps=config.resume_every_steps,
        fingerprint=run_fingerprint(config, examples, world_size=world),
        is_main_process=rank == 0,
        report=report,
    )
    start = resumer.restore(model, optimizer, scheduler)
    if accelerator:
        model, optimizer = accelerator.prepare(model, optimizer)

    def batches(epoch: int, skip: int) -> Iterator[tuple[int, int, Batch]]:
        """This process's batches from batch `skip` of `epoch` on, with their position."""
        while True:
            order = epoch_batches(config.seed + epoch)
            # Every process takes every world_size-th batch of the same order; a remainder
            # that cannot go to all of them is left out of that epoch.
            usable = len(order) - len(order) % world if world > 1 else len(order)
            mine = order[rank:usable:world]
            for offset in range(skip, len(mine)):
                yield epoch, offset, mine[offset]
            epoch, skip = epoch + 1, 0

    report(
        cache.share if cache is not None else 0.0,
        f"training on {len(examples)} solutions, {total_batches} batches",
    )
    tokens = padded = labeled = computed = 0
    loss_sum = loss_count = 0.0
    last_loss = start.last_loss
    started = time.perf_counter() - start.seconds

    def totals() -> tuple[int, int, int, float, float]:
        """Tokens, padded tokens, labeled steps, loss sum and count over every process and attempt.

        A collective call under DDP: every process must make it at the same point.
        """
        mine = torch.tensor(
            [tokens, padded, labeled, loss_sum, loss_count], dtype=torch.float64, device=device
        )
        if accelerator:
            mine = accelerator.reduce(mine, reduction="sum")
        t, p, n, s, c = mine.tolist()
        return (
            int(t) + start.tokens, int(p) + start.padded_tokens, int(n) + start.labeled_steps,
            s + start.loss_sum, c + start.loss_count,
        )  # fmt: skip

    update = start.update
    stream = batches(start.epoch, start.batch_in_epoch)
    for index in range(start.batch_index, total_batches):
        epoch, offset, batch = next(stream)
        packed = None
        if packing:
            collated, packed = collate_packed([examples[i] for i in batch.indices])
        else:
            collated = collate([examples[i] for i in batch.indices], pad_id=pad_id)
        # Causal attention (checked above) and right padding: no mask needed, no pad is seen.
        boundary = None
        if cache is not None:
            if packed is not None:
                boundary = cache.packed(batch.indices, packed).to(device)
            else:
                boundary = cache.batch(batch.indices, collated.input_ids.shape[1]).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(
                collated.input_ids.to(device),
                None,
                collated.rows.to(device),
                collated.positions.to(device),
                boundary_states=boundary,
                packed=packed,
            )
        loss = soft_cross_entropy(logits, collated.targets.to(device), collated.weights.to(device))
        scaled = loss / config.gradient_accumulation
        if accelerator:
            accelerator.backward(scaled)
        else:
            scaled.backward()
        tokens += collated.tokens
        # Packed: no padding, and fewer tokens computed than trained (shared problems).
        padded += max(collated.input_ids.numel(), collated.tokens)
        computed += collated.input_ids.numel()
        labeled += len(collated.positions)
        last_loss = float(loss.detach())
        loss_sum += last_loss
        loss_count += 1
        if (index + 1) % config.gradient_accumulation == 0 or index + 1 == total_batches:
            if config.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(trainable_parameters(model), config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            update += 1
            if resumer.due(update) and index + 1 < total_batches:
                resumer.save(
                    Position(
                        update, index + 1, epoch, offset + 1, *totals(), last_loss,
                        time.perf_counter() - started,
                    ),
                    accelerator.unwrap_model(model) if accelerator else model,
                    optimizer,
                    scheduler,
                )  # fmt: skip
            if update % config.log_every == 0:
                before = cache.share if cache is not None else 0.0
                report(
                    before + (0.9 - before) * (index + 1) / total_batches,
                    f"step {update}/{total_updates} loss {last_loss:.4f}",
                )
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - started
    tokens, padded, labeled, loss_sum, loss_count = totals()
    metrics: dict[str, Any] = {
        "objective": config.objective,
        "train_loss": loss_sum / max(1.0, loss_count),
        "final_loss": last_loss,
        "examples": len(examples),
        "optimizer_steps": update,
        "tokens": tokens,
        "padded_tokens": padded,
        "padding_fraction": 1.0 - tokens / max(1, padded),
        # Tokens the forward passes ran on (this process, this attempt): padded rows count their
        # padding, packed ones count a problem shared by several solutions once.
        "computed_tokens": computed,
        "packed_batches": packing,
        "labeled_steps": labeled,
        "seconds": seconds,
        "tokens_per_s": tokens / max(seconds, 1e-9),
        "labeled_steps_per_s": labeled / max(seconds, 1e-9),
        "device": str(device),
        "bf16": bf16,
        "world_size": world,
        "layers": layer_count,
        "frozen_layers": frozen_layers,
        "trainable_parameters": sum(p.numel() for p in trainable_parameters(model)),
        "frozen_cache_mb": round(cache.nbytes / 2**20, 1) if cache is not None else 0.0,
        "frozen_cache_seconds": cache.seconds if cache is not None else 0.0,
    }
    if accelerator:
        accelerator.wait_for_everyone()
        model = accelerator.unwrap_model(model)
    model.eval()
    if validation and (accelerator is None or accelerator.is_main_process):
        report(0.92, "evaluating on validation data")
        metrics.update(_validation_metrics(model, tokenizer, validation, config, device))
    meta = {
        "objective": config.objective,
        "base_model": config.base_model,
        "max_length": config.max_length,
        "train_config": config.to_dict(),
        "metrics": metrics,
        "num_labels": 3,
        "label_order": ["negative", "neutral", "positive"],
    }
    if accelerator and not accelerator.is_main_process:
        accelerator.wait_for_everyone()
        return TrainResult(os.path.abspath(config.output_dir), metrics)
    report(0.97, "saving checkpoint")
    if config.gradient_checkpointing:
        model.backbone.gradient_checkpointing_disable()
    path = save_checkpoint(
        model, tokenizer, config.output_dir, meta=meta, overwrite=config.overwrite
    )
    if accelerator:
        accelerator.wait_for_everyone()
    report(1.0, "done")
    return TrainResult(checkpoint_dir=path, metrics=metrics)


def _frozen_prefix_cache(
    model: RewardModel,
    examples: Sequence[TrainingExample],
    config: TrainConfig,
    device: torch.device,
    pad_id: int,
    frozen_layers: int,
    report: Callable[[float, str], None],
) -> FrozenPrefixCache | None:
    """The frozen layers' output per example, computed once (None: nothing frozen, or no cache).

    Built before DDP wraps the model; every process builds it for all examples, since each
    epoch deals the batches out afresh.
    """
    if frozen_layers < 1 or config.frozen_cache_gb <= 0:
        return None
    hidden = model.backbone.config.hidden_size
    needed_gb = sum(len(e.input_ids) for e in examples) * hidden * 4 / 2**30
    if needed_gb > config.frozen_cache_gb:
        report(0.0, f"frozen layers run every step: their cache would need {needed_gb:.1f} GB")
        return None
    if not split_matches_full(model):
        report(0.0, "frozen layers run every step: this backbone cannot start mid-stack")
        return None
    bf16 = _native_bf16(device) if config.frozen_bf16 is None else config.frozen_bf16
    # Its share of the progress bar: one forward through the frozen layers against
    # forward + backward (about 3 forwards) through the trained ones, every epoch.
    trained = len(decoder_layers(model.backbone)[2]) - frozen_layers
    share = 0.9 * frozen_layers / (frozen_layers + 3 * config.epochs * trained)
    report(0.0, f"computing the {frozen_layers} frozen layers once for {len(examples)} solutions")
    return FrozenPrefixCache.build(
        model,
        [e.input_ids for e in examples],
        pad_id=pad_id,
        device=device,
        bf16=bf16,
        batch_tokens=max(config.batch_tokens, config.max_length),
        progress=lambda done, total: report(
            share * done / total, f"frozen layers computed for batch {done}/{total}"
        ),
        share=share,
    )


def _native_bf16(device: torch.device) -> bool:
    """Does the device run bf16 matrix products natively (fast), not emulated?"""
    if device.type == "cuda":
        return True
    if device.type != "cpu":
        return False
    cpu = torch.cpu
    return bool(
        getattr(cpu, "_is_avx512_bf16_supported", lambda: False)()
        or getattr(cpu, "_is_amx_tile_supported", lambda: False)()
    )


def _validation_metrics(
    model: RewardModel,
    tokenizer: Any,
    validation: Sequence[LabeledSolution],
    config: TrainConfig,
    device: torch.device,
) -> dict[str, Any]:
    from .evaluate import outcome_metrics, step_metrics

    scorer = RewardModelScorer(
        model, tokenizer, objective=config.objective, max_length=config.max_length, device=device
    )
    usable = [s for s in validation if s.steps]
    scores = scorer.score([(s.problem, s.steps) for s in usable])
    out = {}
    if config.objective == "prm":
        out.update({f"val_{k}": v for k, v in step_metrics(scores, usable).items()})
    out.update({f"val_{k}": v for k, v in outcome_metrics(scores, usable).items()})
    return out


def load_jsonl(path: str) -> list[LabeledSolution]:
    """One LabeledSolution per line, keys named as its fields (extra keys are an error)."""
    names = {f.name for f in dataclasses.fields(LabeledSolution)}
    out = []
    with open(path) as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            unknown = set(row) - names
            if unknown:
                raise ValueError(f"{path}:{number}: unknown keys {sorted(unknown)}")
            out.append(LabeledSolution(**row))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.prm.train", description=__doc__)
    add_arguments(parser)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="JSONL of LabeledSolution records")
    source.add_argument("--synthetic", type=int, help="train on N synthetic problems instead")
    parser.add_argument("--held-out", type=float, default=0.1, help="share of problems held out")
    args = parser.parse_args(argv)
    config = from_namespace(args)
    if args.data:
        solutions = load_jsonl(args.data)
    else:
        from .synthetic import make_world

        solutions = [*make_world(args.synthetic, 8, seed=config.seed)]
    train, held = split_by_problem(solutions, held_out_fraction=args.held_out, seed=config.seed)

    main_process = int(os.environ.get("RANK", "0")) == 0  # one report under torchrun

    def progress(fraction: float, message: str) -> None:
        if main_process:
            print(f"[{fraction:6.1%}] {message}", file=sys.stderr, flush=True)

    result = train_reward_model(train, config, validation=held or None, progress=progress)
    if main_process:
        print(json.dumps({"checkpoint_dir": result.checkpoint_dir, **result.metrics}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
