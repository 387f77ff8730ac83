from __future__ import annotations

import json
import subprocess
import sys

import pytest

from training.prm.processbench import evaluate_processbench, load_processbench
from training.prm.score import RewardModelScorer


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "training.prm.processbench", *args, "--threads", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _split(shared_data, tmp_path):
    """12 GSM8K records to report on, and 12 records of other problems to choose a threshold on."""
    records = json.loads((shared_data / "processbench_gsm8k.json").read_text())
    reported = records[:12]
    seen = {" ".join(r["problem"].split()) for r in reported}
    other = [r for r in records[12:] if " ".join(r["problem"].split()) not in seen][:12]
    data, validation = tmp_path / "reported.json", tmp_path / "validation.json"
    data.write_text(json.dumps(reported))
    validation.write_text(json.dumps(other))
    return data, validation


def test_threshold_comes_from_other_problems_and_f1_covers_the_whole_split(
    tiny_checkpoint, shared_data, tmp_path
):
    data, validation = _split(shared_data, tmp_path)
    out = _run("--model", tiny_checkpoint, "--data", str(data), "--threshold-from", str(validation))
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert result["n"] == 12 and result["n_validation"] == 12
    assert result["n_erroneous"] + result["n_correct"] == 12
    assert result["threshold_source"] == str(validation)
    for key in ("acc_erroneous", "acc_correct", "f1", "threshold", "validation_f1"):
        assert key in result


def test_command_refuses_a_threshold_from_the_reported_problems(
    tiny_checkpoint, shared_data, tmp_path
):
    data, _ = _split(shared_data, tmp_path)
    out = _run("--model", tiny_checkpoint, "--data", str(data), "--threshold-from", str(data))
    assert out.returncode == 2 and "shares 12 problems with --data" in out.stderr
    out = _run("--model", tiny_checkpoint, "--data", str(data))
    assert out.returncode == 2 and "--threshold-from" in out.stderr and "--threshold" in out.stderr


def test_threshold_from_labeled_solutions(tiny_checkpoint, tmp_path):
    from training.prm.processbench import load_threshold_data, threshold_from

    path = tmp_path / "heldout.jsonl"
    rows = [
        {"problem": "Ava has 3 coins.", "steps": ["3 + 1 = 4.", "So 4."], "ratings": [1, 1]},
        {"problem": "Ben has 2 cards.", "steps": ["2 + 2 = 5.", "So 5."], "ratings": [-1]},
        {"problem": "Cy has 5 pens.", "steps": ["5 - 1 = 4.", "So 4."], "ratings": [1]},  # unknown
        {"problem": "Di has 1 cup.", "steps": ["1 + 1 = 2.", "So 2."], "ratings": [None, -1]},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    records = load_threshold_data(str(path))
    assert [(r["problem"], r["label"]) for r in records] == [
        ("Ava has 3 coins.", -1),
        ("Ben has 2 cards.", 0),
    ]
    scorer = RewardModelScorer.from_checkpoint(tiny_checkpoint, device="cpu")
    chosen = threshold_from(scorer, records)
    assert chosen["n_validation"] == 2 and 0.0 <= chosen["threshold"] <= 1.0 + 1e-6
    path.write_text('{"problem": "p"}')
    with pytest.raises(ValueError, match="heldout.jsonl:1"):
        load_threshold_data(str(path))


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
            "--threshold",
            "0.5",
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
