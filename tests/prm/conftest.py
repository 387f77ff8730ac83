"""Fixtures for the pure PRM library: a tiny backbone built once per session (no downloads)."""

from __future__ import annotations

import pytest
import torch

from training.prm.synthetic import build_tiny_backbone

# One thread: on a shared 2-core machine two threads spin against each other (20x slower).
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("backbone") / "tiny"
    return build_tiny_backbone(str(path), hidden_size=32, num_layers=2, num_heads=2)


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_backbone, tmp_path_factory) -> str:
    """An untrained reward model saved as a checkpoint: enough for format and alignment tests."""
    from training.prm.model import new_reward_model, save_checkpoint

    model, tokenizer = new_reward_model(tiny_backbone, seed=0)
    out = tmp_path_factory.mktemp("ckpt") / "prm"
    return save_checkpoint(model, tokenizer, str(out), meta={"objective": "prm", "max_length": 64})
