"""Device throughput of training and scoring on the synthetic world (used by benchmarks/gpu.sh).

    python -m training.prm.throughput                    # one GPU: mid-size model, bf16
    python -m training.prm.throughput --base-model var/models/smollm2-135m-instruct
    python -m training.prm.throughput --device cpu --tiny  # smoke check anywhere

Builds everything locally (tokenizer, a Llama from a config, the synthetic world), so nothing
is downloaded; `--base-model` trains a real local model directory instead (its own tokenizer).
Prints training tokens/s, an MFU estimate and scoring solutions/s.

MFU: achieved FLOP/s over the device's peak. FLOPs per trained (non-pad) token are counted from
the model itself: 6 * N, N = its non-embedding parameters (every weight a token is multiplied by:
attention, MLP, norms, reward head; the token embedding is a lookup), for the forward and backward
matmuls, plus the causal attention itself, 12 * layers * hidden * (positions the token attends to,
on average (T + 1) / 2 in a sequence of T tokens). Frozen layers, if any, are counted as trained.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from typing import Any

import torch

# Dense bf16 peak in TFLOP/s, by device name (public spec sheets, without sparsity).
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0}


def peak_tflops(device: torch.device, override: float | None) -> float | None:
    if override:
        return override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, value in PEAK_TFLOPS.items():
        if key in name:
            return value
    return None


def non_embedding_parameters(model: torch.nn.Module) -> int:
    """Parameters of `model` less its input embedding table (an untied output layer counts)."""
    # A PRM wraps its backbone; a bare causal LM is its own. Any: nn.Module's attributes are untyped.
    backbone: Any = getattr(model, "backbone", model)
    embedding = backbone.get_input_embeddings().weight
    return sum(p.numel() for p in model.parameters() if p is not embedding)


def training_flops_per_token(
    non_embedding_params: int, *, layers: int, hidden: int, lengths: list[int]
) -> float:
    """FLOPs to train on one token, averaged over the tokens of sequences of these lengths."""
    if not lengths:
        raise ValueError("no sequences to average over")
    # A token at position i attends to i + 1 positions: (T + 1) / 2 on average over T tokens,
    # so a long sequence's tokens weigh in with their longer attention.
    attended = sum(t * (t + 1) / 2 for t in lengths) / sum(lengths)
    return 6 * non_embedding_params + 12 * layers * hidden * attended


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.prm.throughput", description=__doc__)
    parser.add_argument("--device", default=None)
    parser.add_argument("--tiny", action="store_true", help="small model and data (CPU smoke)")
    parser.add_argument(
        "--base-model",
        default=None,
        help="local Hugging Face model directory to train instead of the synthetic Llama",
    )
    parser.add_argument("--hidden", type=int, default=None)
    parser.add_argument("--layers", type=int, default=None)
    parser.add_argument("--problems", type=int, default=None)
    parser.add_argument("--epochs", type=float, default=None)
    parser.add_argument("--batch-tokens", type=int, default=None)
    parser.add_argument("--peak-tflops", type=float, default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from .config import TrainConfig
    from .data import build_examples, split_by_problem
    from .score import RewardModelScorer, resolve_device
    from .synthetic import build_tiny_backbone, make_world
    from .train import train_reward_model

    device = resolve_device(args.device)
    tiny = args.tiny
    hidden = args.hidden or (64 if tiny else 768)
    layers = args.layers or (2 if tiny else 12)
    heads = max(1, hidden // 64)
    problems = args.problems or (40 if tiny else 2000)
    epochs = args.epochs or (1.0 if tiny else 3.0)
    batch_tokens = args.batch_tokens or (4096 if tiny else 65536)
    world = make_world(problems, 8, seed=11, min_ops=2, max_ops=12)
    train, held = split_by_problem(world, held_out_fraction=0.1, seed=0)

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        if args.base_model:
            from transformers import AutoConfig

            backbone = args.base_model
            real = AutoConfig.from_pretrained(backbone, local_files_only=True)
            hidden, layers = real.hidden_size, real.num_hidden_layers
            heads = real.num_attention_heads
        else:
            backbone = build_tiny_backbone(
                f"{tmp}/backbone", hidden_size=hidden, num_layers=layers, num_heads=heads
            )
        config = TrainConfig(
            backbone,
            f"{tmp}/prm",
            epochs=epochs,
            learning_rate=3e-4,
            batch_tokens=batch_tokens,
            max_length=1024,
            device=str(device),
        )
        result = train_reward_model(train, config)
        m = result.metrics

        scorer = RewardModelScorer.from_checkpoint(result.checkpoint_dir, device=str(device))
        params = non_embedding_parameters(scorer.model)
        lengths = [
            len(e.input_ids)
            for e in build_examples(train, scorer.tokenizer, max_length=config.max_length)
        ]
        flops_per_token = training_flops_per_token(
            params, layers=layers, hidden=hidden, lengths=lengths
        )
        # Useful FLOPs: padding is not counted, and packed batches compute a problem shared by
        # several solutions once (computed_tokens < tokens): real tokens/s would overstate MFU.
        useful = min(m["computed_tokens"], m["tokens"])
        achieved = flops_per_token * useful / max(m["seconds"], 1e-9)
        peak = peak_tflops(device, args.peak_tflops)
        scorer.bf16 = device.type == "cuda"
        items = [(s.problem, s.steps) for s in held] * (1 if tiny else 4)
        scorer.score(items[:64], batch_tokens=batch_tokens)  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        scorer.score(items, batch_tokens=batch_tokens)
        if device.type == "cuda":
            torch.cuda.synchronize()
        scoring_s = time.perf_counter() - t0
        report = {
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "model": f"{args.base_model or 'llama'} hidden={hidden} layers={layers} heads={heads}",
            "non_embedding_params": params,
            "train_flops_per_token": round(flops_per_token),
            "bf16": m["bf16"],
            "train_tokens": m["tokens"],
            "train_tokens_per_s": round(m["tokens_per_s"]),
            "train_labeled_steps_per_s": round(m["labeled_steps_per_s"]),
            "padding_fraction": round(m["padding_fraction"], 4),
            "computed_tokens_per_real_token": round(m["computed_tokens"] / max(1, m["tokens"]), 3),
            "achieved_tflops": round(achieved / 1e12, 3),
            "mfu": round(achieved / (peak * 1e12), 4) if peak else None,
            "peak_tflops_assumed": peak,
            "scoring_solutions_per_s": round(len(items) / scoring_s, 1),
            "scoring_solutions": len(items),
            "total_s": round(time.perf_counter() - started, 1),
        }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
