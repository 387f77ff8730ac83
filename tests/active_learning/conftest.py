"""Fixtures of the active-learning tests: a tiny backbone and a synthetic world in the DB."""

from __future__ import annotations

import os

import pytest

# Celery workers started by these tests inherit it (see training.tasks): one core each.
os.environ.setdefault("STEPWISE_TORCH_THREADS", "1")

TINY_HYPERPARAMETERS = {"epochs": 2, "max_length": 256, "batch_tokens": 2048, "learning_rate": 3e-3}


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory) -> str:
    import torch

    from training.prm.synthetic import build_tiny_backbone

    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("al-tiny-backbone")
    return build_tiny_backbone(
        str(path), hidden_size=32, num_layers=1, num_heads=2, max_positions=512
    )
