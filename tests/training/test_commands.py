"""train_prm / evaluate_prm / score_solutions in-process on the tiny model (PRM and ORM)."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from labeling.models import Solution
from training.models import PRMVersion, SolutionScore

pytestmark = pytest.mark.django_db


def _call(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_train_evaluate_and_score_commands(
    tiny_backbone, synthetic_labelings, settings, tmp_path, shared_data
):
    settings.STEPWISE_ARTIFACT_DIR = tmp_path / "artifacts"
    settings.STEPWISE_HELDOUT_FRACTION = 0.3
    # The tiny world's held-out set is far below the real minimum; this test is about the commands.
    settings.STEPWISE_PROMOTION_MIN_HELDOUT_SOLUTIONS = 1
    settings.STEPWISE_PROMOTION_MIN_HELDOUT_STEPS = 1
    out = _call(
        "train_prm", "--base-model", tiny_backbone, "--name", "cmd-prm",
        "--epochs", "2", "--max-length", "256", "--activate",
    )  # fmt: skip
    version = PRMVersion.objects.get(name="cmd-prm")
    assert version.state == "active", out
    assert "promoted to active" in out and '"step_auroc"' in out
    assert str(tmp_path / "artifacts") in version.checkpoint_path

    items = json.loads((shared_data / "processbench_gsm8k.json").read_text())[:6]
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps(items))
    result = json.loads(_call("evaluate_prm", "--version", "cmd-prm", "--processbench", str(bench)))
    assert result["processbench"]["items"] == 6
    assert 0.0 <= result["processbench"]["threshold"] <= 1.0 + 1e-6
    assert {"acc_erroneous", "acc_correct", "f1"} <= set(result["processbench"])
    version.refresh_from_db()
    assert version.metrics["evaluation"]["processbench"]["items"] == 6

    # Pool = nobody labeled it: one fresh solution.
    fresh = Solution.objects.create(
        problem=synthetic_labelings[0].problem, fingerprint="fresh", num_steps=1
    )
    fresh.steps.create(position=0, text="The answer is 3.")
    assert "scored 1 solutions" in _call("score_solutions", "--version", "cmd-prm", "--pool")
    assert list(SolutionScore.objects.values_list("solution_id", flat=True)) == [fresh.id]
    assert "scored 25 solutions" in _call("score_solutions", "--version", "cmd-prm", "--all")
    assert "scored 0 solutions" in _call(
        "score_solutions", "--version", "cmd-prm", "--all", "--only-missing"
    )

    # The outcome baseline trains on the same rows with final-answer labels.
    _call("train_prm", "--base-model", tiny_backbone, "--name", "cmd-orm", "--objective", "orm",
          "--epochs", "1", "--max-length", "256")  # fmt: skip
    orm = PRMVersion.objects.get(name="cmd-orm")
    assert orm.kind == "orm" and orm.state == "ready"
    assert orm.metrics["train_objective"] == "orm"


def test_command_errors_are_clear(tmp_path):
    with pytest.raises(CommandError, match="is not a local model directory"):
        _call("train_prm", "--base-model", str(tmp_path / "missing"))
    with pytest.raises(CommandError, match="no version named 'nope'"):
        _call("evaluate_prm", "--version", "nope")
    PRMVersion.objects.create(name="t", base_model="/m")
    with pytest.raises(CommandError, match="has no finished checkpoint"):
        _call("score_solutions", "--version", "t", "--all")
