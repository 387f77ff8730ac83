"""Packed batches (a problem's tokens once for all its solutions, no padding) are exact: the same
logits, gradients and trained weights as padded rows of whole solutions."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaModel

from training.prm.config import TrainConfig
from training.prm.data import (
    build_examples,
    collate,
    problem_grouped_batches,
)
from training.prm.model import (
    FrozenPrefixCache,
    RewardModel,
    freeze_lower_layers,
    load_checkpoint,
    new_reward_model,
    packing_matches_plain,
)
from training.prm.segments import collate_packed, pack
from training.prm.synthetic import make_world
from training.prm.train import soft_cross_entropy, train_reward_model


def _examples(tokenizer):
    # 3 problems x 4 solutions of 1 to 7 operations, and one problem with a single solution
    # (nothing to share: it stays a whole row).
    world = make_world(3, 4, seed=5, min_ops=1, max_ops=7) + make_world(1, 1, seed=9)
    examples = build_examples(world, tokenizer, max_length=256)
    assert len({len(e.input_ids) for e in examples}) > 3
    return examples


def _logits_and_grads(model, examples, *, packed: bool, boundary=None):
    model.zero_grad(set_to_none=True)
    if packed:
        batch, row = collate_packed(examples)
        states = boundary.packed(range(len(examples)), row) if boundary else None
    else:
        batch, row = collate(examples, pad_id=0), None
        states = (
            boundary.batch(range(len(examples)), batch.input_ids.shape[1]) if boundary else None
        )
    logits = model(batch.input_ids, None, batch.rows, batch.positions, states, packed=row)
    soft_cross_entropy(logits, batch.targets, batch.weights).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return logits.detach(), grads, batch


def _assert_same(model, examples, boundary=None):
    slow, slow_grads, padded = _logits_and_grads(model, examples, packed=False, boundary=boundary)
    fast, fast_grads, packed = _logits_and_grads(model, examples, packed=True, boundary=boundary)
    # Fewer tokens computed than the solutions hold: the problems were shared.
    assert packed.input_ids.numel() < padded.tokens < padded.input_ids.numel()
    torch.testing.assert_close(fast, slow, rtol=1e-4, atol=1e-5)
    assert slow.std() > 0.01  # the head tells the positions apart
    assert fast_grads.keys() == slow_grads.keys() and slow_grads
    for name in slow_grads:
        torch.testing.assert_close(fast_grads[name], slow_grads[name], rtol=1e-3, atol=1e-6)


def test_packed_logits_and_gradients_equal_padded_rows(tiny_backbone):
    model, tokenizer = new_reward_model(tiny_backbone, seed=1)
    with torch.no_grad():
        model.head.weight.mul_(5)
    model.train()
    _assert_same(model, _examples(tokenizer))


def test_grouped_query_attention_backbone(tiny_backbone):
    """SmolLM2 has fewer key/value heads than query heads: the packed path must repeat them."""
    _, tokenizer = new_reward_model(tiny_backbone, seed=1)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        attn_implementation="sdpa",
    )
    torch.manual_seed(0)
    model = RewardModel(LlamaModel(config))
    with torch.no_grad():
        model.head.weight.mul_(20)
    model.train()
    assert packing_matches_plain(model)
    _assert_same(model, _examples(tokenizer))


def test_frozen_layer_states_packed_like_the_ids(tiny_backbone):
    model, tokenizer = new_reward_model(tiny_backbone, seed=1)
    with torch.no_grad():
        model.head.weight.mul_(5)
    assert freeze_lower_layers(model, 1) == 1
    examples = _examples(tokenizer)
    cache = FrozenPrefixCache.build(
        model,
        [e.input_ids for e in examples],
        pad_id=0,
        device=torch.device("cpu"),
        bf16=False,
        batch_tokens=4096,
    )
    model.train()
    _assert_same(model, examples, boundary=cache)


def test_layout_positions_restart_after_each_shared_problem():
    row = pack([[1, 2, 3, 7, 8], [1, 2, 3, 9], [4, 5]], [3, 3, 1])
    assert row.input_ids.tolist() == [[1, 2, 3, 7, 8, 9, 4, 5]]
    assert row.position_ids.tolist() == [[0, 1, 2, 3, 4, 3, 0, 1]]
    assert row.flat_index == [[0, 1, 2, 3, 4], [0, 1, 2, 5], [6, 7]]
    assert row.solution_tokens == 11 and row.computed_tokens == 8


def test_problem_batches_keep_problems_together_and_cover_everything():
    problems = [i // 5 for i in range(40)]  # 8 problems x 5 solutions
    lengths = [10 + (i * 7) % 30 for i in range(40)]
    for seed in (0, 1, None):
        batches = problem_grouped_batches(problems, lengths, batch_tokens=120, seed=seed)
        seen = sorted(i for b in batches for i in b.indices)
        assert seen == list(range(40))
        assert all(sum(lengths[i] for i in b.indices) <= 120 for b in batches)
        # A problem spans at most two neighbouring batches (it continues where it did not fit).
        for p in set(problems):
            where = [n for n, b in enumerate(batches) if any(problems[i] == p for i in b.indices)]
            assert where == list(range(where[0], where[0] + len(where))) and len(where) <= 2
    assert [b.indices for b in problem_grouped_batches(problems, lengths, batch_tokens=120)] != [
        b.indices for b in problem_grouped_batches(problems, lengths, batch_tokens=120, seed=1)
    ]


@pytest.mark.parametrize("train_layers", [None, 1])
def test_training_packed_gives_the_weights_of_padded_training(
    tiny_backbone, tmp_path, train_layers
):
    """One batch holding every solution, two epochs: both paths take the same optimizer steps on
    the same data, so the trained weights must agree."""
    world = make_world(3, 4, seed=5, min_ops=1, max_ops=7)
    metrics, heads = {}, {}
    for share in (False, True):
        config = TrainConfig(
            tiny_backbone,
            str(tmp_path / f"share-{share}"),
            epochs=2,
            learning_rate=1e-3,
            batch_tokens=100_000,
            max_length=256,
            device="cpu",
            share_problems=share,
            train_layers=train_layers,
        )
        result = train_reward_model(world, config)
        metrics[share] = result.metrics
        model, _, _ = load_checkpoint(result.checkpoint_dir)
        heads[share] = {n: p.detach() for n, p in model.named_parameters()}
    assert metrics[True]["packed_batches"] and not metrics[False]["packed_batches"]
    assert metrics[True]["tokens"] == metrics[False]["tokens"]
    assert metrics[True]["computed_tokens"] < metrics[True]["tokens"]
    assert metrics[True]["padding_fraction"] == 0.0
    assert metrics[True]["final_loss"] == pytest.approx(metrics[False]["final_loss"], rel=1e-4)
    for name, weight in heads[False].items():
        torch.testing.assert_close(heads[True][name], weight, rtol=1e-3, atol=1e-5)


def test_scorer_packed_gives_the_padded_probabilities(tiny_backbone):
    """Several solutions per problem (shared in one row) and lone ones, in small batches."""
    from training.prm.score import RewardModelScorer

    model, tokenizer = new_reward_model(tiny_backbone, seed=1)
    with torch.no_grad():
        model.head.weight.mul_(5)
    world = make_world(4, 5, seed=8, min_ops=1, max_ops=9) + make_world(2, 1, seed=3)
    items = [(s.problem, s.steps) for s in world]
    packed = RewardModelScorer(model, tokenizer, max_length=256, device="cpu")
    padded = RewardModelScorer(model, tokenizer, max_length=256, device="cpu", packed=False)
    fast = packed.step_probabilities(items, batch_tokens=600)
    assert packed.last_packed  # the start-up check passed and the problems repeat
    slow = padded.step_probabilities(items, batch_tokens=600)
    assert [len(p) for p in fast] == [len(s.steps) for s in world]
    flat_fast = torch.tensor([p for probs in fast for p in probs])
    flat_slow = torch.tensor([p for probs in slow for p in probs])
    torch.testing.assert_close(flat_fast, flat_slow, rtol=1e-4, atol=1e-6)
    assert flat_slow[:, 2].std() > 0.01
