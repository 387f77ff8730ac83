from __future__ import annotations

import json
import subprocess
import sys

import pytest

from training.prm.processbench import evaluate_processbench, load_processbench
from training.prm.score import RewardModelScorer


def test_command_runs_first_error_evaluation(tiny_checkpoint, shared_data):
    data = shared_data / "processbench_gsm8k.json"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "training.prm.processbench",
            "--model",
            tiny_checkpoint,
            "--data",
            str(data),
            "--limit",
            "12",
            "--threads",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert result["n_test"] + result["n_validation"] == 12
    for key in ("acc_erroneous", "acc_correct", "f1", "threshold"):
        assert key in result


def test_command_rejects_a_path_that_is_not_a_checkpoint(tmp_path, shared_data):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "training.prm.processbench",
            "--model",
            str(tmp_path),
            "--data",
            str(shared_data / "processbench_gsm8k.json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 2 and "not a reward-model checkpoint" in out.stderr


def test_fixed_threshold_scores_every_record(tiny_checkpoint, tmp_path):
    records = [
        {"problem": "Ava has 3 coins.", "steps": ["3 + 1 = 4.", "So 4."], "label": -1},
        {"problem": "Ben has 2 cards.", "steps": ["2 + 2 = 5.", "So 5."], "label": 0},
    ]
    path = tmp_path / "pb.json"
    path.write_text(json.dumps(records))
    scorer = RewardModelScorer.from_checkpoint(tiny_checkpoint, device="cpu")
    # Threshold above 1: every first step is flagged, so only the erroneous record is right.
    result = evaluate_processbench(scorer, load_processbench(str(path)), threshold=1.5)
    assert (result["acc_erroneous"], result["acc_correct"], result["f1"]) == (1.0, 0.0, 0.0)
    path.write_text(json.dumps([{"problem": "p", "steps": ["a"], "label": 3}]))
    with pytest.raises(ValueError, match="out of range"):
        load_processbench(str(path))
