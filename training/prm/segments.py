"""Several solutions in one forward pass, without padding, each problem's tokens computed once.

A batch is laid out as one flat row of tokens: for every problem, its tokens once, then the steps
of each of its solutions in the batch (the "suffixes"). Every token-wise part of the backbone
(embeddings, projections, MLPs, norms) runs on that row, so it computes no padding and no problem
twice. Attention alone needs the structure back, and gets it from `SegmentLayout`: a suffix's
tokens attend to their problem's tokens and, causally, to their own suffix; a problem's tokens
attend causally to themselves. Position ids restart per solution (problem 0..p-1, then p, p+1,
...), so every token sees exactly the keys, values and rotary positions it would see in its own
padded row: the logits and gradients are those of the plain path up to float rounding
(tests/prm/test_segments.py).

The attention runs as one `scaled_dot_product_attention` per bucket of segments of similar length
(gathered into a small padded tensor, pads masked out), through transformers' attention interface:
any model whose attention layers dispatch there (Llama, Qwen, Mistral, SmolLM2, ...) takes this
path unchanged. `segments_match_plain` checks a given model before a run relies on it.

Why: in PRM data a problem comes with many solutions (PRM800K's alternatives, sampled pools, the
synthetic world), and its text is about a third of every solution's tokens.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from .data import Collated, TrainingExample

ATTENTION_NAME = "stepwise_segments"
_layout: ContextVar[SegmentLayout | None] = ContextVar("stepwise_segment_layout", default=None)


@dataclass
class _Bucket:
    index: torch.Tensor  # [m, width] flat index of each attention row's tokens (pads: 0)


@dataclass
class SegmentLayout:
    """Which tokens of the flat row each token attends to, as gather indices and masks."""

    buckets: list[_Bucket]
    # For each token of the flat row, where its output is among the buckets' rows (each bucket
    # flattened to [m * width], the buckets concatenated).
    source: torch.Tensor

    def to(self, device: torch.device) -> SegmentLayout:
        moved = [_Bucket(b.index.to(device)) for b in self.buckets]
        return SegmentLayout(moved, self.source.to(device))


@dataclass
class PackedRow:
    """Token ids of a batch as one flat row, and where each sequence's tokens went."""

    input_ids: torch.Tensor  # [1, N]
    position_ids: torch.Tensor  # [1, N]
    layout: SegmentLayout
    # starts[i][k]: flat index of token k of sequence i (its problem part is shared)
    flat_index: list[list[int]]
    solution_tokens: int  # sum of the sequences' lengths: what the plain path would compute

    @property
    def computed_tokens(self) -> int:
        return int(self.input_ids.shape[1])


def _cheapest_cuts(widths: list[int], overhead: float, max_buckets: int) -> list[int]:
    """Cut ascending `widths` into at most `max_buckets` runs minimising the causal attention
    area (rows x width^2 / 2 per run, the run padded to its widest) plus `overhead` per run."""
    n = len(widths)
    inf = float("inf")
    # best[b][j]: cheapest cost of the first j rows in b runs; cut[b][j]: where the last run starts
    best = [[inf] * (n + 1) for _ in range(max_buckets + 1)]
    cut = [[0] * (n + 1) for _ in range(max_buckets + 1)]
    best[0][0] = 0.0
    for b in range(1, max_buckets + 1):
        for j in range(1, n + 1):
            area = widths[j - 1] ** 2 / 2 + overhead
            for i in range(j):
                cost = best[b - 1][i] + (j - i) * widths[j - 1] ** 2 / 2 + overhead
                if cost < best[b][j]:
                    best[b][j], cut[b][j] = cost, i
            del area
    runs = min(range(1, max_buckets + 1), key=lambda b: best[b][n])
    bounds, j = [n], n
    for b in range(runs, 0, -1):
        j = cut[b][j]
        bounds.append(j)
    return bounds[::-1]


def _segments_to_buckets(
    segments: list[tuple[list[int], list[int]]], max_buckets: int, overhead: float
) -> tuple[list[_Bucket], torch.Tensor]:
    """segments: (the shared tokens before it, its own tokens), as flat indices.

    Each segment's attention runs as a row of its own: [shared tokens, own tokens], causal, so
    the own tokens see exactly what they would in a padded row of their solution; the shared
    tokens are only keys there (their outputs come from their own segment). Rows of similar
    width go together, right-padded, in a few buckets (pads are never seen by a real query).
    """
    order = sorted(range(len(segments)), key=lambda m: sum(map(len, segments[m])))
    widths = [sum(map(len, segments[m])) for m in order]
    bounds = _cheapest_cuts(widths, overhead, max(1, min(max_buckets, len(order))))
    buckets = []
    source = torch.empty(sum(len(own) for _, own in segments), dtype=torch.long)
    offset = 0
    for a, b in zip(bounds, bounds[1:], strict=False):
        if b <= a:
            continue
        group = order[a:b]
        width = widths[b - 1]
        index = torch.zeros((len(group), width), dtype=torch.long)
        for row, m in enumerate(group):
            before, own = segments[m]
            index[row, : len(before) + len(own)] = torch.tensor(before + own, dtype=torch.long)
            first = offset + row * width + len(before)
            source[torch.tensor(own, dtype=torch.long)] = torch.arange(first, first + len(own))
        buckets.append(_Bucket(index))
        offset += len(group) * width
    return buckets, source


def pack(
    sequences: Sequence[Sequence[int]],
    prefix_lengths: Sequence[int],
    *,
    max_buckets: int = 6,
    bucket_overhead: float = 4096.0,
) -> PackedRow:
    """One flat row for `sequences`; those whose first `prefix_lengths[i]` ids are the same
    (the same problem) share those tokens. A prefix length of 0 shares nothing.

    `max_buckets`, `bucket_overhead`: attention runs in at most that many padded buckets, a new
    one opening when it saves more than `bucket_overhead` (in units of token pairs) of padding.
    """
    groups: dict[tuple[int, ...], list[int]] = {}
    alone: list[int] = []
    for i, (ids, p) in enumerate(zip(sequences, prefix_lengths, strict=True)):
        if 0 < p < len(ids):
            groups.setdefault(tuple(ids[:p]), []).append(i)
        else:
            alone.append(i)
    row: list[int] = []
    positions: list[int] = []
    flat_index: list[list[int]] = [[] for _ in sequences]
    segments: list[tuple[list[int], list[int]]] = []

    def place(ids: Sequence[int], first_position: int) -> list[int]:
        start = len(row)
        row.extend(ids)
        positions.extend(range(first_position, first_position + len(ids)))
        return list(range(start, len(row)))

    for prefix, members in groups.items():
        if len(members) == 1:  # nothing to share: one causal segment
            alone.append(members[0])
            continue
        shared = place(prefix, 0)
        segments.append(([], shared))
        for i in members:
            own = place(sequences[i][len(prefix) :], len(prefix))
            segments.append((shared, own))
            flat_index[i] = shared + own
    for i in alone:
        own = place(sequences[i], 0)
        segments.append(([], own))
        flat_index[i] = own
    buckets, source = _segments_to_buckets(segments, max_buckets, bucket_overhead)
    return PackedRow(
        input_ids=torch.tensor([row], dtype=torch.long),
        position_ids=torch.tensor([positions], dtype=torch.long),
        layout=SegmentLayout(buckets, source),
        flat_index=flat_index,
        solution_tokens=sum(len(s) for s in sequences),
    )


def segment_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers' attention-function signature: query [1, heads, N, d], key and value
    [1, kv_heads, N, d] over the flat row; returns [1, N, heads, d]."""
    layout = _layout.get()
    if layout is None or query.shape[0] != 1:
        raise RuntimeError("segment attention runs only inside RewardModel.segments(layout)")
    # [tokens, heads, d]: contiguous for the q/k/v projections' outputs, so gathering rows
    # of tokens copies whole rows.
    q, k, v = (t[0].transpose(0, 1) for t in (query, key, value))
    gqa = k.shape[1] != q.shape[1]
    outputs = []
    for b in layout.buckets:
        q_b, k_b, v_b = (t[b.index].transpose(1, 2) for t in (q, k, v))  # [m, heads, width, d]
        out = torch.nn.functional.scaled_dot_product_attention(
            q_b, k_b, v_b, dropout_p=dropout, is_causal=True, scale=scaling, enable_gqa=gqa
        )
        outputs.append(out.transpose(1, 2).reshape(-1, *out.shape[1:2], out.shape[-1]))
    every = torch.cat(outputs) if len(outputs) > 1 else outputs[0]  # [rows x width, heads, d]
    return every[layout.source][None], None


def _no_mask(*args: Any, **kwargs: Any) -> None:
    """The layout carries the attention structure: transformers builds no mask for it."""
    return None


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(ATTENTION_NAME, segment_attention)
    AttentionMaskInterface.register(ATTENTION_NAME, _no_mask)


@contextmanager
def segment_attention_for(backbone: nn.Module, layout: SegmentLayout) -> Iterator[None]:
    """Run `backbone`'s attention over `layout` inside the block (restored afterwards)."""
    _register()
    config: Any = backbone.config  # a transformers config (untyped)
    before = config._attn_implementation
    token = _layout.set(layout)
    config._attn_implementation = ATTENTION_NAME
    try:
        yield
    finally:
        config._attn_implementation = before
        _layout.reset(token)


def collate_packed(
    examples: Sequence[TrainingExample], **options: Any
) -> tuple[Collated, PackedRow]:
    """`data.collate` for a packed batch: (Collated with one flat row, its PackedRow).

    The head's (row, position) pairs point into the flat row (row 0); `tokens` stays the
    solutions' own token count, what the padded path would call real tokens.
    """
    from .data import Collated

    packed = pack(
        [e.input_ids for e in examples],
        [e.prefix_length for e in examples],
        **options,
    )
    positions: list[int] = []
    targets: list[tuple[float, float, float]] = []
    weights: list[float] = []
    for example, where in zip(examples, packed.flat_index, strict=True):
        positions.extend(where[p] for p in example.label_positions)
        targets.extend(example.targets)
        weights.extend([example.weight] * len(example.label_positions))
    collated = Collated(
        input_ids=packed.input_ids,
        attention_mask=None,
        rows=torch.zeros(len(positions), dtype=torch.long),
        positions=torch.tensor(positions, dtype=torch.long),
        targets=torch.tensor(targets, dtype=torch.float32),
        weights=torch.tensor(weights, dtype=torch.float32),
        tokens=packed.solution_tokens,
    )
    return collated, packed


# Below this share of tokens saved, packing costs more than it saves: with one solution per
# problem its gathers made scoring 0.89x as fast as padded rows (benchmarks/bench_scoring.py,
# Llama 128 x 4, one CPU thread).
MIN_SHARED_FRACTION = 0.1


def shared_fraction(sequences: Sequence[Sequence[int]], prefix_lengths: Sequence[int]) -> float:
    """The share of all tokens that packing would compute only once: every problem's tokens
    beyond its first solution (if all of a problem's solutions shared a batch)."""
    total = sum(len(s) for s in sequences)
    seen: set[tuple[int, ...]] = set()
    saved = 0
    for ids, p in zip(sequences, prefix_lengths, strict=True):
        if 0 < p < len(ids):
            key = tuple(ids[:p])
            saved += p if key in seen else 0
            seen.add(key)
    return saved / max(1, total)
