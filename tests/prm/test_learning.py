"""A real (tiny) training run on the synthetic world must learn; a broken label alignment fails it."""

from __future__ import annotations

import pytest
import torch

from training.prm.config import TrainConfig
from training.prm.data import split_by_problem
from training.prm.evaluate import outcome_metrics, step_metrics
from training.prm.model import load_checkpoint, new_reward_model
from training.prm.score import RewardModelScorer
from training.prm.synthetic import build_tiny_backbone, make_world, mistake_aurocs
from training.prm.train import train_reward_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def backbone(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("learn") / "backbone"
    return build_tiny_backbone(str(path), hidden_size=64, num_layers=3, num_heads=4)


@pytest.fixture(scope="module")
def world():
    # Many problems seen once, most with a mistake: the model learns the checks rather than
    # memorising problems (2,000 problems x 2 samples gave 0.76-0.81; see BENCHMARKS.md).
    solutions = make_world(12000, 1, seed=1, min_ops=2, max_ops=4, error_rate=1.0)
    return split_by_problem(solutions, held_out_fraction=0.1, seed=0)


# About 5 minutes alone; the margin is for a machine busy with other work.
@pytest.mark.timeout(1500)
def test_prm_learns_the_synthetic_world(backbone, world, tmp_path):
    train, held = world
    reports = []
    config = TrainConfig(
        backbone,
        str(tmp_path / "prm"),
        epochs=6.0,
        learning_rate=1e-3,
        batch_tokens=1024,
        max_length=256,
        seed=0,
    )
    result = train_reward_model(
        train, config, validation=held, progress=lambda f, m: reports.append(f)
    )
    assert reports[0] == 0.0 and reports[-1] == 1.0 and reports == sorted(reports)
    m = result.metrics
    assert m["labeled_steps"] > 0 and m["padding_fraction"] < 0.2
    scorer = RewardModelScorer.from_checkpoint(result.checkpoint_dir, device="cpu")
    scores = scorer.score([(s.problem, s.steps) for s in held])
    step = step_metrics(scores, held)
    kinds = mistake_aurocs(scores, held)
    print(f"held-out step AUROC {step['step_auroc']:.3f} ({step['n_steps']} steps); {kinds}")
    # 0.948 here (0.96 before solutions varied their wording). Measured once on this split: the
    # untrained model 0.55, the same training with every rating moved one step later 0.46.
    assert step["step_auroc"] > 0.92
    # Each kind of mistake is learned, not just the one visible inside the step: look-ups in the
    # problem (copied number) and in the previous step (carried value), and the arithmetic.
    assert kinds["operation"] > 0.97
    assert kinds["copy"] > 0.88 and kinds["carry"] > 0.88 and kinds["slip"] > 0.85
    assert m["val_step_auroc"] == pytest.approx(step["step_auroc"], abs=1e-6)
    # The product score ranks right answers over wrong ones.
    solution_auroc = outcome_metrics(scores, held)["solution_auroc"]
    print(f"held-out solution AUROC {solution_auroc:.3f}")
    assert solution_auroc > 0.8
    # Weights changed from the starting point (backbone and head).
    trained, _, _ = load_checkpoint(result.checkpoint_dir)
    fresh, _ = new_reward_model(backbone, seed=0)
    assert not torch.equal(trained.head.weight, fresh.head.weight)
    layer = "layers.0.self_attn.q_proj.weight"
    assert not torch.equal(trained.backbone.state_dict()[layer], fresh.backbone.state_dict()[layer])


def test_orm_trains_on_final_answers(backbone, world, tmp_path):
    train, held = world
    train = train[:3000]  # outcome labels need fewer solutions to beat chance; keeps this quick
    config = TrainConfig(
        backbone,
        str(tmp_path / "orm"),
        objective="orm",
        epochs=2.0,
        learning_rate=2e-3,
        batch_tokens=1024,
        max_length=256,
    )
    result = train_reward_model(train, config)
    scorer = RewardModelScorer.from_checkpoint(result.checkpoint_dir, device="cpu")
    assert scorer.objective == "orm"
    scores = scorer.score([(s.problem, s.steps) for s in held])
    for s in scores:
        assert all(p[1] == 0.0 and p[0] == pytest.approx(1 - p[2]) for p in s.step_probs)
        assert s.score == s.step_probs[-1][2]
    assert outcome_metrics(scores, held)["solution_auroc"] > 0.6


def test_training_rejects_unusable_input(backbone, tmp_path):
    config = TrainConfig(backbone, str(tmp_path / "x"))
    from training.prm.data import LabeledSolution

    with pytest.raises(ValueError, match="no trainable steps"):
        train_reward_model([LabeledSolution("p", ["a"], [None])], config)
    with pytest.raises(ValueError, match="objective"):
        train_reward_model([], TrainConfig(backbone, str(tmp_path / "x"), objective="dpo"))
    assert not (tmp_path / "x").exists()
