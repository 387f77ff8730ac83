"""Training configuration: one dataclass, help text on every field (also used by the CLI)."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from typing import Any


def _f(default: Any, help: str) -> Any:  # noqa: A002 - mirrors argparse's name
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    base_model: str = field(
        metadata={"help": "Local directory of a Hugging Face model (never a hub id)."}
    )
    output_dir: str = field(
        metadata={"help": "Where the checkpoint goes; written to a temp dir, then renamed."}
    )
    objective: str = _f("prm", "'prm' (per-step ratings) or 'orm' (final-answer correctness).")
    epochs: float = _f(1.0, "Passes over the training data (fractions allowed).")
    learning_rate: float = _f(1e-4, "Peak AdamW learning rate (linear warm-up, then linear decay).")
    batch_tokens: int = _f(8192, "Token budget per batch (rows x longest row), length-grouped.")
    max_length: int = _f(2048, "Longest input in tokens; longer solutions lose trailing steps.")
    seed: int = _f(0, "Seed for batching, head initialisation and the random generator.")
    bf16: bool | None = _f(None, "bf16 autocast; None means on for CUDA, off (fp32) on CPU.")
    gradient_checkpointing: bool = _f(False, "Recompute activations in backward to save memory.")
    device: str | None = _f(None, "torch device; None picks cuda when available, else cpu.")
    weight_decay: float = _f(0.0, "AdamW weight decay.")
    warmup_fraction: float = _f(0.05, "Share of optimizer steps spent warming up the LR.")
    max_grad_norm: float = _f(1.0, "Gradient clipping norm (0 disables).")
    gradient_accumulation: int = _f(1, "Batches per optimizer step.")
    overwrite: bool = _f(True, "Replace an existing output_dir (swapped in by rename).")
    log_every: int = _f(20, "Report progress every this many optimizer steps.")
    backbone_layers: int | None = _f(
        None,
        "Keep only the first N transformer layers of the pretrained model and drop the rest "
        "(the checkpoint is that shallower model): faster to train and to score, and mid-depth "
        "features judge steps as well as the top ones. None: keep them all.",
    )
    train_layers: int | None = _f(
        None,
        "Train only the top K transformer layers, the final norm and the head; the embeddings and "
        "the layers below stay as pretrained. None (or K >= the model's depth): train everything.",
    )
    frozen_cache_gb: float = _f(
        8.0,
        "With train_layers, compute the frozen layers once per solution and keep their output "
        "(in CPU memory, up to this many GB) for every epoch; 0, or data too big: recompute them "
        "in every step (without their backward pass).",
    )
    frozen_bf16: bool | None = _f(
        None,
        "bf16 autocast for that one-time pass through the frozen layers; None: on for CUDA and "
        "for CPUs with native bf16 (AVX512-BF16 or AMX), else fp32.",
    )
    share_problems: bool = _f(
        True,
        "Batch whole problems and pack each batch into one row without padding, a problem's "
        "tokens computed once for all its solutions in the batch (exact: same logits and "
        "gradients as padded rows). Off: rows grouped by length and right-padded. Not used "
        "with gradient checkpointing or a backbone that fails the start-up check.",
    )
    resume_dir: str | None = _f(
        None,
        "Directory of the resume state (see resume.py): written every resume_every_steps, "
        "continued from when it matches this run. None: no resume state.",
    )
    resume_every_steps: int = _f(100, "Optimizer steps between resume-state writes.")

    def validate(self) -> None:
        if self.objective not in ("prm", "orm"):
            raise ValueError(f"objective must be 'prm' or 'orm', not {self.objective!r}")
        if self.epochs <= 0:
            raise ValueError("epochs must be positive")
        if self.batch_tokens < self.max_length and self.batch_tokens < 16:
            raise ValueError("batch_tokens is too small")
        if self.max_length < 8:
            raise ValueError("max_length must be at least 8")
        if self.learning_rate <= 0:
            raise ValueError("learning_rate must be positive")
        if self.gradient_accumulation < 1:
            raise ValueError("gradient_accumulation must be >= 1")
        if self.backbone_layers is not None and self.backbone_layers < 0:
            raise ValueError("backbone_layers must be >= 1 (0 or None: keep every layer)")
        if self.train_layers is not None and self.train_layers < 0:
            raise ValueError("train_layers must be >= 0 (0 or None: train every layer)")
        if self.frozen_cache_gb < 0:
            raise ValueError("frozen_cache_gb must be >= 0")
        if self.resume_every_steps < 1:
            raise ValueError("resume_every_steps must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def add_arguments(parser: argparse.ArgumentParser, cls: type = TrainConfig) -> None:
    """One flag per dataclass field, help text taken from the field metadata."""
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        required = f.default is dataclasses.MISSING
        kind = str(f.type)
        if "bool" in kind:
            parser.add_argument(
                flag,
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=None if required else f.default,
                help=f.metadata.get("help"),
            )
            continue
        if "int" in kind and "float" not in kind:
            conv: Any = int
        elif "float" in kind:
            conv = float
        else:
            conv = str
        parser.add_argument(
            flag,
            dest=f.name,
            type=conv,
            required=required,
            default=None if required else f.default,
            help=f.metadata.get("help"),
        )


def from_namespace(args: argparse.Namespace, cls: type = TrainConfig) -> Any:
    return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})
