"""Two processes under torchrun (DDP over gloo, on CPU) train what one process trains.

Each of the 2 processes takes every other batch of the same seeded order, and DDP averages the two
gradients: one optimizer step sees batches 2k and 2k+1, as one process with gradient accumulation
2 does. Each batch's loss is the mean over its labeled steps in both set-ups (accumulation divides
by 2, DDP averages over 2 processes), so the updates are the same, and here bit for bit: halving
is exact in floating point.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from training.prm import resume
from training.prm.config import TrainConfig
from training.prm.data import build_examples, length_grouped_batches, split_by_problem
from training.prm.model import load_checkpoint, load_tokenizer
from training.prm.synthetic import make_world
from training.prm.train import train_reward_model

ROOT = Path(__file__).resolve().parents[2]
PROBLEMS = 12  # `--synthetic 12`: make_world(12, 8, seed=0), nothing held out
SETTINGS = {"epochs": 2.0, "learning_rate": 3e-3, "batch_tokens": 256, "max_length": 128}


def _launch(backbone: str, out: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "training.prm.train", "--base-model", backbone, "--output-dir", str(out),
        "--synthetic", str(PROBLEMS), "--held-out", "0", "--device", "cpu", "--log-every", "10",
        *(f"--{k.replace('_', '-')}={v}" for k, v in SETTINGS.items()), *extra,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def _torchrun(backbone: str, out: Path, *extra: str) -> tuple[dict, str]:
    done = _launch(backbone, out, *extra)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    return json.loads(done.stdout[done.stdout.index("{") :]), done.stderr


def _weights(path: str) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in load_checkpoint(path)[0].state_dict().items()}


@pytest.fixture(scope="module")
def solutions():
    train, held = split_by_problem(make_world(PROBLEMS, 8, seed=0), held_out_fraction=0)
    assert not held
    return train


@pytest.fixture(scope="module")
def one_process(tiny_backbone, solutions, tmp_path_factory):
    """The reference: one process, gradient accumulation 2, the same batches."""
    config = TrainConfig(
        tiny_backbone,
        str(tmp_path_factory.mktemp("one") / "prm"),
        gradient_accumulation=2,
        device="cpu",
        **SETTINGS,
    )
    result = train_reward_model(solutions, config)
    return result, _weights(result.checkpoint_dir)


def test_batches_split_evenly_between_two_processes(tiny_backbone, solutions):
    # An odd batch count would leave one batch per epoch out of the 2-process run (no process
    # can take it without the other): the comparison below needs an even count in every epoch.
    examples = build_examples(solutions, load_tokenizer(tiny_backbone), max_length=128)
    lengths = [len(e.input_ids) for e in examples]
    counts = {
        len(length_grouped_batches(lengths, batch_tokens=256, seed=epoch)) for epoch in (0, 1)
    }
    assert len(counts) == 1 and counts.pop() % 2 == 0


def test_two_processes_train_what_one_process_with_accumulation_2_trains(
    tiny_backbone, one_process, tmp_path
):
    reference, reference_weights = one_process
    metrics, log = _torchrun(tiny_backbone, tmp_path / "ddp")
    assert metrics["world_size"] == 2, log
    # Every batch trained exactly once, over both processes together.
    for key in ("optimizer_steps", "tokens", "padded_tokens", "labeled_steps", "examples"):
        assert metrics[key] == reference.metrics[key], key
    assert metrics["train_loss"] == pytest.approx(reference.metrics["train_loss"], rel=1e-6)

    weights = _weights(str(tmp_path / "ddp"))
    assert weights.keys() == reference_weights.keys()
    for name, tensor in reference_weights.items():
        torch.testing.assert_close(weights[name], tensor, rtol=0, atol=1e-6, msg=name)


def test_two_processes_resume_from_the_state_the_main_process_wrote(
    tiny_backbone, one_process, tmp_path
):
    _, reference_weights = one_process
    state_dir = tmp_path / "resume"
    extra = ("--resume-dir", str(state_dir), "--resume-every-steps", "10")
    first, _ = _torchrun(tiny_backbone, tmp_path / "first", *extra)
    state = resume.read_state(state_dir)
    # The last state before the end: step 40, written once for both processes.
    assert state["position"]["update"] == 40 and state["fingerprint"]["world_size"] == 2
    assert sorted(p.name for p in state_dir.iterdir()) == [resume.STATE_NAME]
    # Its position counts each process's own batches: 40 of them, one per optimizer step.
    assert state["position"]["batch_index"] == 40

    # A second launch (as after a lost attempt) continues from step 40 and ends the same way.
    second, log = _torchrun(tiny_backbone, tmp_path / "second", *extra)
    # The batch within the epoch depends on how many batches the data makes per process.
    assert re.search(r"resumed from step 40 \(epoch 1, batch \d+\)", log), log[-3000:]
    assert "step 10/" not in log and "step 40/" not in log
    assert second["optimizer_steps"] == first["optimizer_steps"] > 40
    assert second["tokens"] == first["tokens"] and second["labeled_steps"] == first["labeled_steps"]
    weights = _weights(str(tmp_path / "second"))
    for name, tensor in reference_weights.items():
        torch.testing.assert_close(weights[name], tensor, rtol=0, atol=1e-6, msg=name)


def test_too_few_batches_for_the_processes_is_an_error_not_a_hang(tiny_backbone, tmp_path):
    # One batch per epoch (everything fits in it) cannot be shared by two processes.
    done = _launch(tiny_backbone, tmp_path / "ddp", "--batch-tokens=1000000")
    assert done.returncode != 0
    assert "1 batch(es) per epoch cannot be shared by 2 processes" in done.stderr
    assert not (tmp_path / "ddp").exists()
