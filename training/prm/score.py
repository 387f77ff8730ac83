"""Score solutions with a trained reward model: one forward pass reads every step's separator.

Inputs are formatted by `data.encode_solution`, the function the trainer uses. Solutions longer
than the model's `max_length` are scored in windows: each window restarts after the last step
that fitted, with the problem in front, so every step gets probabilities.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .data import STEP_SEPARATOR, EncodedSolution, encode_solution, length_grouped_batches
from .model import RewardModel, load_checkpoint

AGGREGATES = ("product", "min", "last")


@dataclass
class SolutionScores:
    step_probs: list[tuple[float, float, float]]  # (p_negative, p_neutral, p_positive) per step
    score: float


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
        tokenizer,
        *,
        objective: str = "prm",
        max_length: int = 2048,
        device: str | torch.device | None = None,
        bf16: bool | None = None,
    ) -> None:
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

    def windows(self, problem: str, steps: Sequence[str]) -> list[EncodedSolution]:
        """The encoded inputs that together cover every step (one unless the solution is long)."""
        out, start = [], 0
        while start < len(steps):
            encoded = encode_solution(
                self.tokenizer,
                problem,
                steps[start:],
                max_length=self.max_length,
                separator_id=self.separator_id,
            )
            out.append(encoded)
            start += encoded.num_steps
        return out

    @torch.inference_mode()
    def step_probabilities(
        self, items: Sequence[tuple[str, Sequence[str]]], *, batch_tokens: int = 16384
    ) -> list[list[tuple[float, float, float]]]:
        """Softmax of the 3-way head at every step separator, per item, in step order."""
        windows: list[tuple[int, int, EncodedSolution]] = []  # (item, window order, encoded)
        for index, (problem, steps) in enumerate(items):
            if not steps:
                raise ValueError(f"item {index} has no steps to score")
            for order, encoded in enumerate(self.windows(problem, steps)):
                windows.append((index, order, encoded))
        lengths = [len(w[2].input_ids) for w in windows]
        results: dict[tuple[int, int], list[tuple[float, float, float]]] = {}
        budget = max(batch_tokens, self.max_length)
        for batch in length_grouped_batches(lengths, batch_tokens=budget, seed=None):
            chosen = [windows[i] for i in batch.indices]
            input_ids = torch.full((len(chosen), batch.width), self.pad_id, dtype=torch.long)
            mask = torch.zeros_like(input_ids)
            rows, positions = [], []
            for row, (_, _, encoded) in enumerate(chosen):
                input_ids[row, : len(encoded.input_ids)] = torch.tensor(encoded.input_ids)
                mask[row, : len(encoded.input_ids)] = 1
                rows.extend([row] * len(encoded.step_ends))
                positions.extend(encoded.step_ends)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                logits = self.model(
                    input_ids.to(self.device),
                    None if self.causal else mask.to(self.device),
                    torch.tensor(rows, device=self.device),
                    torch.tensor(positions, device=self.device),
                )
            probs = torch.softmax(logits.float(), dim=-1).cpu().tolist()
            cursor = 0
            for index, order, encoded in chosen:
                n = len(encoded.step_ends)
                results[(index, order)] = [tuple(p) for p in probs[cursor : cursor + n]]
                cursor += n
        per_item: list[list[tuple[float, float, float]]] = [[] for _ in items]
        for index, order, _ in sorted(windows, key=lambda w: (w[0], w[1])):
            per_item[index].extend(results[(index, order)])
        return per_item

    def score(
        self,
        items: Sequence[tuple[str, list[str]]],
        *,
        aggregate: str = "product",
        neutral_as_positive: bool = True,
        batch_tokens: int = 16384,
    ) -> list[SolutionScores]:
        """Per-step probabilities and one score per solution.

        PRM: goodness of a step = P(positive) (+ P(neutral) when `neutral_as_positive`), combined
        by `aggregate` ("product" as in the paper, "min", or "last").
        ORM: P(correct) = 1 - P(negative) at each separator, reported as (1-p, 0, p); the
        solution's score is the value at the last step whatever `aggregate` says.
        """
        if aggregate not in AGGREGATES:
            raise ValueError(f"aggregate must be one of {AGGREGATES}, not {aggregate!r}")
        out = []
        for probs in self.step_probabilities(items, batch_tokens=batch_tokens):
            if self.objective == "orm":
                correct = [1.0 - p[0] for p in probs]
                out.append(
                    SolutionScores(
                        step_probs=[(1.0 - c, 0.0, c) for c in correct], score=correct[-1]
                    )
                )
                continue
            goodness = [p[2] + (p[1] if neutral_as_positive else 0.0) for p in probs]
            out.append(SolutionScores(step_probs=probs, score=aggregate_score(goodness, aggregate)))
        return out
