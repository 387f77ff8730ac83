"""The reward model runs its top MLP only where the head reads; logits and gradients stay exact."""

from __future__ import annotations

import pytest
import torch

from training.prm.data import build_examples, collate
from training.prm.model import decoder_layers, new_reward_model
from training.prm.synthetic import make_world
from training.prm.train import soft_cross_entropy


def _batch(tokenizer):
    world = make_world(4, 3, seed=2, min_ops=1, max_ops=6)
    examples = build_examples(world, tokenizer, max_length=256)
    # Rows of different lengths, so row offsets and right padding are both exercised.
    examples = sorted(examples, key=lambda e: len(e.input_ids))[::3][:4]
    assert len({len(e.input_ids) for e in examples}) > 1
    return collate(examples, pad_id=tokenizer.pad_token_id)


def _reference(model, batch):
    """What the forward computed before: the whole backbone, then the head at the positions."""
    hidden = model.backbone(input_ids=batch.input_ids, use_cache=False).last_hidden_state
    return model.head(hidden[batch.rows, batch.positions]).float()


def _loss_and_grads(model, logits, batch):
    model.zero_grad(set_to_none=True)
    soft_cross_entropy(logits, batch.targets, batch.weights).backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("checkpointing", [False, True])
def test_logits_and_gradients_equal_the_full_backbone(tiny_backbone, checkpointing):
    model, tokenizer = new_reward_model(tiny_backbone, seed=1)
    with torch.no_grad():
        model.head.weight.mul_(5)  # make positions tell apart clearly
    model.train()
    if checkpointing:
        model.backbone.gradient_checkpointing_enable(
            gradient_checkpointing_kwargs={"use_reentrant": False}
        )
    batch = _batch(tokenizer)

    fast = model(batch.input_ids, None, batch.rows, batch.positions)
    fast_grads = _loss_and_grads(model, fast, batch)
    slow = _reference(model, batch)
    slow_grads = _loss_and_grads(model, slow, batch)

    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-6)
    assert fast.std() > 0.01  # the head does tell the positions apart
    assert fast_grads.keys() == slow_grads.keys()
    top_mlp = decoder_layers(model.backbone)[2][-1].mlp
    assert any(
        fast_grads[n].abs().sum() > 0
        for n, p in model.named_parameters()
        if p is top_mlp.up_proj.weight
    )
    for name in slow_grads:
        torch.testing.assert_close(fast_grads[name], slow_grads[name], rtol=1e-4, atol=1e-6)


def test_the_top_mlp_is_whole_again_after_the_forward(tiny_backbone):
    model, tokenizer = new_reward_model(tiny_backbone, seed=1)
    batch = _batch(tokenizer)
    top_mlp = decoder_layers(model.backbone)[2][-1].mlp
    with torch.no_grad():
        model(batch.input_ids, None, batch.rows, batch.positions)
        assert "forward" not in top_mlp.__dict__
        hidden = torch.randn(2, 5, model.backbone.config.hidden_size)
        assert top_mlp(hidden).abs().min() > 0  # every token computed, none left at zero
