"""A training run that stops midway and resumes from its resume state ends where an uninterrupted
run ends: same weights, bit for bit on CPU fp32 (the random generators are part of the state)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from training.prm import resume
from training.prm.config import TrainConfig
from training.prm.data import build_examples, length_grouped_batches
from training.prm.model import load_checkpoint, load_tokenizer
from training.prm.synthetic import make_world
from training.prm.train import train_reward_model

CRASH_AT = 7  # optimizer step at which the first attempt dies
EVERY = 3  # so the last state before the crash is at step 6


class Crash(Exception):
    pass


@pytest.fixture(scope="module")
def dropout_backbone(tiny_backbone, tmp_path_factory) -> str:
    """The tiny backbone with attention dropout on: the resumed run must draw the same masks."""
    path = tmp_path_factory.mktemp("dropout") / "tiny"
    shutil.copytree(tiny_backbone, path)
    config = json.loads((path / "config.json").read_text())
    config["attention_dropout"] = 0.2
    (path / "config.json").write_text(json.dumps(config))
    return str(path)


@pytest.fixture(scope="module")
def solutions():
    return make_world(12, 2, seed=3)


def _config(backbone: str, out: Path, **overrides) -> TrainConfig:
    settings = dict(
        epochs=2.0,
        learning_rate=3e-3,
        batch_tokens=256,
        max_length=128,
        gradient_accumulation=2,
        log_every=1,
        device="cpu",
        resume_every_steps=EVERY,
    )
    return TrainConfig(backbone, str(out), **{**settings, **overrides})


def _weights(path: str) -> dict[str, torch.Tensor]:
    model, _, _ = load_checkpoint(path)
    return {k: v.clone() for k, v in model.state_dict().items()}


def _crash_at(step: int, messages: list[str]):
    def progress(fraction: float, message: str) -> None:
        messages.append(message)
        if message.startswith(f"step {step}/"):
            raise Crash(message)

    return progress


@pytest.fixture(scope="module")
def uninterrupted(dropout_backbone, solutions, tmp_path_factory):
    out = tmp_path_factory.mktemp("whole") / "prm"
    result = train_reward_model(solutions, _config(dropout_backbone, out))
    return result, _weights(result.checkpoint_dir)


def test_resumed_run_ends_with_the_weights_of_an_uninterrupted_run(
    dropout_backbone, solutions, uninterrupted, tmp_path
):
    whole, whole_weights = uninterrupted
    assert whole.metrics["optimizer_steps"] > CRASH_AT + 2  # the crash is mid-run
    config = _config(dropout_backbone, tmp_path / "prm", resume_dir=str(tmp_path / "resume"))

    first: list[str] = []
    with pytest.raises(Crash):
        train_reward_model(solutions, config, progress=_crash_at(CRASH_AT, first))
    assert not (tmp_path / "prm").exists()  # no final checkpoint from the lost attempt
    state = resume.read_state(config.resume_dir)
    assert state["position"]["update"] == 6  # step 7's work is lost and must be redone

    second: list[str] = []
    result = train_reward_model(solutions, config, progress=lambda f, m: second.append(m))
    assert any(m.startswith("resumed from step 6 ") for m in second), second
    assert not any(m.startswith("step 6/") for m in second)  # steps 1-6 were not trained again
    assert any(m.startswith(f"step {CRASH_AT}/") for m in second)

    weights = _weights(result.checkpoint_dir)
    assert weights.keys() == whole_weights.keys()
    for name, tensor in whole_weights.items():
        assert torch.equal(weights[name], tensor), name
    for key in ("optimizer_steps", "tokens", "labeled_steps", "examples"):
        assert result.metrics[key] == whole.metrics[key], key
    assert result.metrics["train_loss"] == pytest.approx(whole.metrics["train_loss"], rel=1e-9)
    assert result.metrics["final_loss"] == whole.metrics["final_loss"]


def test_state_records_the_data_position_in_the_seeded_batch_order(
    dropout_backbone, solutions, tmp_path
):
    config = _config(dropout_backbone, tmp_path / "prm", resume_dir=str(tmp_path / "resume"))
    with pytest.raises(Crash):
        train_reward_model(solutions, config, progress=_crash_at(CRASH_AT, []))
    state = resume.read_state(config.resume_dir)
    tokenizer = load_tokenizer(dropout_backbone)
    examples = build_examples(solutions, tokenizer, max_length=config.max_length)
    lengths = [len(e.input_ids) for e in examples]
    per_epoch = len(
        length_grouped_batches(
            lengths, batch_tokens=max(config.batch_tokens, max(lengths)), seed=config.seed
        )
    )
    done = 6 * config.gradient_accumulation  # batches behind the 6 saved optimizer steps
    assert done < per_epoch * 2  # inside the run (2 epochs)
    position = state["position"]
    assert position["batch_index"] == done
    epoch, batch_in_epoch = position["epoch"], position["batch_in_epoch"]
    if batch_in_epoch == per_epoch:  # "after the last batch of epoch e" is the start of e + 1
        epoch, batch_in_epoch = epoch + 1, 0
    assert (epoch, batch_in_epoch) == divmod(done, per_epoch)
    assert position["labeled_steps"] > 0 and position["tokens"] > 0
    # Model (trainable parameters), optimizer moments, scheduler, generators, fingerprint.
    assert set(state) >= {"model", "optimizer", "scheduler", "rng", "fingerprint", "position"}
    assert state["scheduler"]["last_epoch"] == 6
    assert all(s["step"] == 6 for s in state["optimizer"]["state"].values())
    assert "head.weight" in state["model"]
    assert state["fingerprint"]["world_size"] == 1


def test_state_of_another_run_is_not_resumed(dropout_backbone, solutions, uninterrupted, tmp_path):
    config = _config(dropout_backbone, tmp_path / "prm", resume_dir=str(tmp_path / "resume"))
    with pytest.raises(Crash):
        train_reward_model(solutions, config, progress=_crash_at(CRASH_AT, []))
    changed = _config(
        dropout_backbone, tmp_path / "prm", resume_dir=config.resume_dir, learning_rate=1e-3
    )
    messages: list[str] = []
    train_reward_model(solutions, changed, progress=lambda f, m: messages.append(m))
    assert any("differs in learning_rate" in m and "starting from step 0" in m for m in messages)
    assert not any(m.startswith("resumed") for m in messages)
    assert any(m.startswith("step 1/") for m in messages)

    # The state left now is the changed run's; other data (first solution dropped) is named too.
    messages.clear()
    train_reward_model(solutions[1:], changed, progress=lambda f, m: messages.append(m))
    assert any("(differs in data)" in m for m in messages), messages


def test_a_failed_state_write_keeps_the_previous_state(tmp_path, monkeypatch):
    folder = tmp_path / "resume"
    resume.write_state(folder, {"format_version": resume.FORMAT_VERSION, "position": {"update": 3}})

    def broken_save(obj, fh):
        fh.write(b"half a state")
        raise OSError("disk full")

    monkeypatch.setattr(resume.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        resume.write_state(folder, {"format_version": resume.FORMAT_VERSION, "position": {}})
    assert resume.read_state(folder)["position"] == {"update": 3}
    assert sorted(p.name for p in folder.iterdir()) == [resume.STATE_NAME]


def test_unreadable_state_is_reported_and_training_starts_over(tmp_path):
    folder = tmp_path / "resume"
    folder.mkdir()
    (folder / resume.STATE_NAME).write_bytes(b"not a state")
    with pytest.raises(ValueError, match="unreadable resume state"):
        resume.read_state(folder)
    messages: list[str] = []
    resumer = resume.Resumer(
        str(folder), every_steps=1, fingerprint={}, report=lambda f, m: messages.append(m)
    )
    assert resumer.restore(None, None, None) == resume.Position()
    assert "starting from step 0" in messages[0]


def test_resume_with_frozen_lower_layers_keeps_only_the_trained_ones(
    tiny_backbone, solutions, tmp_path
):
    # Top layer trained, bottom layer frozen (its output cached): the state holds what trains.
    whole = train_reward_model(
        solutions, _config(tiny_backbone, tmp_path / "whole", train_layers=1)
    )
    config = _config(
        tiny_backbone, tmp_path / "prm", train_layers=1, resume_dir=str(tmp_path / "resume")
    )
    with pytest.raises(Crash):
        train_reward_model(solutions, config, progress=_crash_at(CRASH_AT, []))
    saved = resume.read_state(config.resume_dir)["model"]
    assert "head.weight" in saved and any(".layers.1." in name for name in saved)
    assert not any(".layers.0." in name or "embed_tokens" in name for name in saved)

    messages: list[str] = []
    result = train_reward_model(solutions, config, progress=lambda f, m: messages.append(m))
    assert any(m.startswith("resumed from step 6 ") for m in messages), messages
    expected, actual = _weights(whole.checkpoint_dir), _weights(result.checkpoint_dir)
    for name, tensor in expected.items():
        assert torch.equal(actual[name], tensor), name
