"""The MFU estimate counts the model's real parameters (a Llama layer is 16 h^2, not 12 h^2)."""

from __future__ import annotations

import pytest
from transformers import AutoConfig

from training.prm.model import new_reward_model
from training.prm.throughput import non_embedding_parameters, training_flops_per_token


def test_non_embedding_parameters_of_a_llama_reward_model(tiny_backbone):
    model, _ = new_reward_model(tiny_backbone, seed=0)
    cfg = AutoConfig.from_pretrained(tiny_backbone, local_files_only=True)
    h, layers = cfg.hidden_size, cfg.num_hidden_layers
    assert cfg.intermediate_size == 4 * h and cfg.num_key_value_heads == cfg.num_attention_heads
    # Per layer: q, k, v, o (4 h^2), gate, up, down (3 * h * 4h = 12 h^2), two norms (2h);
    # then the final norm (h) and the 3-way head (3h + 3). The embedding table is a lookup.
    expected = layers * (16 * h * h + 2 * h) + h + 3 * h + 3
    assert non_embedding_parameters(model) == expected
    embedding = model.backbone.get_input_embeddings().weight.numel()
    assert sum(p.numel() for p in model.parameters()) == expected + embedding


def test_training_flops_per_token_by_hand():
    # Sequences of 1 and 3 tokens attend to 1 and 1 + 2 + 3 = 6 positions: 7 / 4 per token.
    assert training_flops_per_token(10, layers=2, hidden=4, lengths=[1, 3]) == pytest.approx(
        6 * 10 + 12 * 2 * 4 * 7 / 4
    )
    with pytest.raises(ValueError):
        training_flops_per_token(10, layers=2, hidden=4, lengths=[])
