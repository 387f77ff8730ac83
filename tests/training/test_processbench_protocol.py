"""evaluate_prm on ProcessBench: threshold from held-out labels of other problems, F1 on the file
less the problems the version was trained on."""

from __future__ import annotations

import json

import pytest

from tests.training import factories as f
from training.datasets import is_heldout
from training.models import PRMVersion
from training.services import evaluate_prm_version

pytestmark = pytest.mark.django_db

FRACTION = 0.5


def _source_id(heldout: bool, start: int) -> str:
    """A source id that the split sends to the held-out side (or not)."""
    n = start
    while is_heldout(f"pb/{n}", FRACTION) != heldout:
        n += 1
    return f"pb/{n}"


def test_processbench_threshold_and_report_stay_apart(tiny_backbone, tmp_path, shared_data):
    from training.prm.model import new_reward_model, save_checkpoint

    model, tokenizer = new_reward_model(tiny_backbone, seed=0)
    checkpoint = save_checkpoint(
        model, tokenizer, str(tmp_path / "prm"), meta={"objective": "prm", "max_length": 256}
    )
    items = json.loads((shared_data / "processbench_gsm8k.json").read_text())[:5]
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps(items))
    steps = ["Let x = 2.", "Then 2x = 4.", "# Answer\n\n4"]
    # Trained on the first benchmark problem; held-out labels on the second and on another one.
    trained = f.problem(items[0]["problem"], source_id=_source_id(False, 0))
    heldout_benchmark = f.problem(items[1]["problem"], source_id=_source_id(True, 0))
    heldout_other = f.problem("What is 2 times 2?", source_id=_source_id(True, 1000))
    for prob in (trained, heldout_benchmark, heldout_other):
        f.labeling(f.solution(prob, steps), [1, -1])
    version = PRMVersion.objects.create(
        name="pb",
        base_model=tiny_backbone,
        state=PRMVersion.State.READY,
        checkpoint_path=checkpoint,
        data_snapshot={"heldout_fraction": FRACTION},
    )

    result = evaluate_prm_version(prm_version_id=version.id, processbench_path=str(bench))

    report = result["processbench"]
    same_as_trained = sum(
        " ".join(i["problem"].split()) == " ".join(items[0]["problem"].split()) for i in items
    )
    assert report["items"] == 5
    assert report["excluded_trained_problems"] == same_as_trained
    assert report["n"] == 5 - same_as_trained
    assert report["n_erroneous"] + report["n_correct"] == report["n"]
    assert report["threshold_source"] == "held-out labels"
    assert report["n_threshold_solutions"] == 1  # the held-out benchmark problem is left out
