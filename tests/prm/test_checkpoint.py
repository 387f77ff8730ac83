from __future__ import annotations

import pytest
import torch

from training.prm.model import is_checkpoint, load_checkpoint, new_reward_model, save_checkpoint
from training.prm.score import RewardModelScorer

ITEMS = [("Ava has 3 coins. She buys 2 more.", ["She starts with 3 coins.", "3 + 2 = 5."])]


def test_round_trip_scores_identically(tiny_backbone, tmp_path):
    model, tok = new_reward_model(tiny_backbone, seed=1)
    with torch.no_grad():
        model.head.weight.mul_(3)
    before = RewardModelScorer(model, tok, device="cpu").score(ITEMS)[0]
    path = save_checkpoint(model, tok, str(tmp_path / "ckpt"), meta={"objective": "prm"})
    after = RewardModelScorer.from_checkpoint(path, device="cpu").score(ITEMS)[0]
    assert after.score == pytest.approx(before.score, abs=1e-6)
    for a, b in zip(after.step_probs, before.step_probs, strict=True):
        assert a == pytest.approx(b, abs=1e-6)
    _, tok2, meta = load_checkpoint(path)
    assert len(tok2) == len(tok) and meta["separator"] == "<|step|>"


def test_failed_save_leaves_nothing_half_written(tiny_backbone, tmp_path, monkeypatch):
    model, tok = new_reward_model(tiny_backbone, seed=1)
    target = tmp_path / "ckpt"
    save_checkpoint(model, tok, str(target), meta={"objective": "prm", "version": 1})

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(tok, "save_pretrained", boom)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(model, tok, str(target), meta={"objective": "prm", "version": 2})
    # The old checkpoint is untouched and no temp dir is left beside it.
    assert is_checkpoint(str(target))
    assert load_checkpoint(str(target))[2]["version"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
    with pytest.raises(FileNotFoundError):
        load_checkpoint(str(tmp_path))


def test_bad_inputs_are_rejected(tiny_checkpoint, tmp_path):
    scorer = RewardModelScorer.from_checkpoint(tiny_checkpoint, device="cpu")
    with pytest.raises(ValueError, match="no steps"):
        scorer.score([("problem", [])])
    with pytest.raises(ValueError, match="aggregate"):
        scorer.score(ITEMS, aggregate="mean")
    with pytest.raises(FileNotFoundError):
        new_reward_model(str(tmp_path / "missing"))
