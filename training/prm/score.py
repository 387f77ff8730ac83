"""Score solutions with a trained reward model: one forward pass reads every step's separator.

Inputs are formatted by `data.encode_solution`, the function the trainer uses, with the model's
training `max_length`: a solution is scored exactly as it would be trained. Steps that do not fit
are not scored (training never sees them either; a window restarting without the earlier steps
would ask the model something it was never trained on). `SolutionScores.truncated` counts them,
so a caller can tell a score over the whole solution from one over its first steps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .data import (
    STEP_SEPARATOR,
    EncodedSolution,
    encode_solution,
    length_grouped_batches,
    problem_grouped_batches,
)
from .model import RewardModel, load_checkpoint, packing_matches_plain
from .segments import MIN_SHARED_FRACTION, pack, shared_fraction

AGGREGATES = ("product", "min", "last")


@dataclass
class SolutionScores:
    # (p_negative, p_neutral, p_positive) per scored step: the leading steps that fit the context
    step_probs: list[tuple[float, float, float]]
    score: float  # over the scored steps
    truncated: int = 0  # steps after them, left unscored because they did not fit


def resolve_device(device: str | None) -> torch.device:
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def is_causal_backbone(model: RewardModel) -> bool:
    """Right padding needs no attention mask in a causal decoder: no real token sees a pad."""
    architectures = getattr(model.backbone.config, "architectures", None) or []
    return any(a.endswith("ForCausalLM") for a in architectures) or bool(
        getattr(model.backbone.config, "is_decoder", False)
    )


def aggregate_score(goodness: Sequence[float], aggregate: str) -> float:
    if aggregate not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {AGGREGATES}, not {aggregate!r}")
    if not goodness:
        raise ValueError("cannot aggregate a solution with no steps")
    if aggregate == "product":
        return math.prod(goodness)
    if aggregate == "min":
        return min(goodness)
    return goodness[-1]


class RewardModelScorer:
    def __init__(
        self,
        model: RewardModel,
        tokenizer: Any,
        *,
        objective: str = "prm",
        max_length: int = 2048,
        device: str | torch.device | None = None,
        bf16: bool | None = None,
        packed: bool | None = None,
    ) -> None:
        """`packed`: batches as one row without padding, a problem's tokens computed once for
        all its solutions in the batch (segments.py; exact). None: on when this model passes
        `packing_matches_plain` (checked on first use) and the items repeat their problems
        enough to pay for it (`segments.MIN_SHARED_FRACTION`)."""
        self.packed = packed
        self._packing_works: bool | None = None
        self.last_packed = False  # whether the last call ran packed
        self.device = resolve_device(str(device) if device is not None else None)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.objective = objective
        self.max_length = max_length
        self.separator_id = tokenizer.convert_tokens_to_ids(STEP_SEPARATOR)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.bf16 = self.device.type == "cuda" if bf16 is None else bf16
        self.causal = is_causal_backbone(model)

    @classmethod
    def from_checkpoint(cls, path: str, *, device: str | None = None) -> RewardModelScorer:
        dev = resolve_device(device)
        model, tokenizer, meta = load_checkpoint(path, device=dev)
        return cls(
            model,
            tokenizer,
            objective=meta.get("objective", "prm"),
            max_length=int(meta.get("max_length", 2048)),
            device=dev,
        )

    def encode(self, problem: str, steps: Sequence[str]) -> EncodedSolution:
        """The model's input for a solution: the one the trainer builds (`encode_solution`)."""
        return encode_solution(
            self.tokenizer,
            problem,
            steps,
            max_length=self.max_length,
            separator_id=self.separator_id,
        )

    @torch.inference_mode()
    def step_probabilities(
        self, items: Sequence[tuple[str, Sequence[str]]], *, batch_tokens: int | None = None
    ) -> list[list[tuple[float, float, float]]]:
        """Softmax of the 3-way head at every step separator that fits, per item, in step order.

        An item gets fewer probabilities than it has steps when it is longer than `max_length`.
        `batch_tokens` (rows x longest row per forward) defaults to 16384 on a GPU and 2048 on
        a CPU, where a batch whose activations stay in cache is faster per token (measured with
        benchmarks/bench_scoring.py against 16384: 1.2-1.5x on a Llama 128 x 4, 1.04-1.17x on
        SmolLM2-135M).
        """
        if batch_tokens is None:
            batch_tokens = 16384 if self.device.type == "cuda" else 2048
        encoded: list[EncodedSolution] = []
        for index, (problem, steps) in enumerate(items):
            if not steps:
                raise ValueError(f"item {index} has no steps to score")
            encoded.append(self.encode(problem, steps))
        lengths = [len(e.input_ids) for e in encoded]
        per_item: list[list[tuple[float, float, float]]] = [[] for _ in items]
        budget = max(batch_tokens, self.max_length)
        packed = self.packed
        if packed is None:
            if self._packing_works is None:
                self._packing_works = self.causal and packing_matches_plain(self.model)
            packed = self._packing_works and (
                shared_fraction([e.input_ids for e in encoded], [e.prefix_length for e in encoded])
                >= MIN_SHARED_FRACTION
            )
        self.last_packed = packed
        if packed:
            problems = [tuple(e.input_ids[: e.prefix_length]) for e in encoded]
            for batch in problem_grouped_batches(problems, lengths, batch_tokens=budget, seed=None):
                packed_row = pack(
                    [encoded[i].input_ids for i in batch.indices],
                    [encoded[i].prefix_length for i in batch.indices],
                )
                flat = [
                    where[p]
                    for i, where in zip(batch.indices, packed_row.flat_index, strict=True)
                    for p in encoded[i].step_ends
                ]
                flat_positions = torch.tensor(flat, device=self.device)
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                    logits = self.model(
                        packed_row.input_ids.to(self.device),
                        None,
                        torch.zeros_like(flat_positions),
                        flat_positions,
                        packed=packed_row,
                    )
                self._spread(logits, batch.indices, encoded, per_item)
            return per_item
        for batch in length_grouped_batches(lengths, batch_tokens=budget, seed=None):
            input_ids = torch.full((len(batch.indices), batch.width), self.pad_id, dtype=torch.long)
            mask = torch.zeros_like(input_ids)
            rows: list[int] = []
            positions: list[int] = []
            for row, index in enumerate(batch.indices):
                ids = encoded[index].input_ids
                input_ids[row, : len(ids)] = torch.tensor(ids)
                mask[row, : len(ids)] = 1
                rows.extend([row] * len(encoded[index].step_ends))
                positions.extend(encoded[index].step_ends)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                logits = self.model(
                    input_ids.to(self.device),
                    None if self.causal else mask.to(self.device),
                    torch.tensor(rows, device=self.device),
                    torch.tensor(positions, device=self.device),
                )
            self._spread(logits, batch.indices, encoded, per_item)
        return per_item

    @staticmethod
    def _spread(
        logits: torch.Tensor,
        indices: Sequence[int],
        encoded: list[EncodedSolution],
        per_item: list[list[tuple[float, float, float]]],
    ) -> None:
        """Softmax of a batch's logits (its items' separators in order) into `per_item`."""
        probs = torch.softmax(logits.float(), dim=-1).cpu().tolist()
        cursor = 0
        for index in indices:
            n = len(encoded[index].step_ends)
            per_item[index] = [tuple(p) for p in probs[cursor : cursor + n]]
            cursor += n

    def score(
        self,
        items: Sequence[tuple[str, list[str]]],
        *,
        aggregate: str = "product",
        neutral_as_positive: bool = True,
        batch_tokens: int | None = None,
    ) -> list[SolutionScores]:
        """Per-step probabilities and one score per solution.

        PRM: goodness of a step = P(positive) (+ P(neutral) when `neutral_as_positive`), combined
        by `aggregate` ("product" as in the paper, "min", or "last").
        ORM: P(correct) = 1 - P(negative) at each separator, reported as (1-p, 0, p); the
        solution's score is the value at the last step whatever `aggregate` says.
        Steps past `max_length` are not scored; `truncated` says how many (see the module doc).
        """
        if aggregate not in AGGREGATES:
            raise ValueError(f"aggregate must be one of {AGGREGATES}, not {aggregate!r}")
        out = []
        all_probs = self.step_probabilities(items, batch_tokens=batch_tokens)
        for (_, steps), probs in zip(items, all_probs, strict=True):
            truncated = len(steps) - len(probs)
            if self.objective == "orm":
                correct = [1.0 - p[0] for p in probs]
                step_probs = [(1.0 - c, 0.0, c) for c in correct]
                out.append(SolutionScores(step_probs, score=correct[-1], truncated=truncated))
                continue
            goodness = [p[2] + (p[1] if neutral_as_positive else 0.0) for p in probs]
            score = aggregate_score(goodness, aggregate)
            out.append(SolutionScores(step_probs=probs, score=score, truncated=truncated))
        return out
