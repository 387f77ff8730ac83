"""The export management commands: filters, output file, bad arguments."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.core.management import CommandError, call_command

from tests.exports import factories as f

pytestmark = pytest.mark.django_db

T0 = datetime(2023, 2, 1, 8, 0, tzinfo=UTC)


def _two_labelings():
    steps = [{"completions": [("a", 1)], "chosen": 0}, {"completions": [("b", -1)]}]
    f.labeling(
        by=f.labeler("alice"),
        of=f.solution(["a", "b"]),
        steps=steps,
        timestamp=T0,
        gen=f.generation(4),
        finish_reason="found_error",
    )
    f.labeling(
        by=f.labeler("bob"),
        of=f.solution(["a", "b"]),
        steps=steps,
        timestamp=T0.replace(day=3),
        gen=f.generation(5),
        qc=True,
        finish_reason="found_error",
    )


def test_export_prm800k_writes_filtered_lines(tmp_path):
    _two_labelings()
    out = tmp_path / "out.jsonl"
    call_command("export_prm800k", output=str(out), no_progress=True)
    assert [f.who(json.loads(x)["labeler"]) for x in out.read_text().splitlines()] == [
        "alice",
        "bob",
    ]
    call_command("export_prm800k", "--output", str(out), "--generation", "5", "--no-progress")
    assert [f.who(json.loads(x)["labeler"]) for x in out.read_text().splitlines()] == ["bob"]
    call_command("export_prm800k", "-o", str(out), "--exclude-qc", "--since", "2023-01-31")
    assert [f.who(json.loads(x)["labeler"]) for x in out.read_text().splitlines()] == ["alice"]
    call_command("export_prm800k", "-o", str(out), "--until", "2023-02-01T08:00:00")
    assert out.read_text() == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_export_prm800k_rejects_bad_dates_and_folders(tmp_path):
    with pytest.raises(CommandError, match="not an ISO date"):
        call_command("export_prm800k", "-o", str(tmp_path / "x.jsonl"), "--since", "yesterday")
    with pytest.raises(CommandError, match="does not exist"):
        call_command("export_prm800k", "-o", str(tmp_path / "missing" / "x.jsonl"))
    assert list(tmp_path.iterdir()) == []


def test_export_stepwise_options(tmp_path):
    _two_labelings()
    out = tmp_path / "steps.jsonl"
    call_command("export_stepwise", "-o", str(out), "--labeler", "bob", "--no-progress")
    [record] = [json.loads(x) for x in out.read_text().splitlines()]
    assert record.pop("id").endswith("-path")
    assert record == {
        "prompt": "What is $1+1$?",
        "completions": ["a", "b"],
        "labels": [True, False],
    }
    call_command("export_stepwise", "-o", str(out), "--exclude-qc", "--neutral-as-negative")
    assert len(out.read_text().splitlines()) == 1


def test_an_output_folder_gets_a_file_named_after_its_contents(tmp_path):
    _two_labelings()
    call_command("export_prm800k", "-o", str(tmp_path), "--generation", "4", "--no-progress")
    call_command("export_stepwise", "-o", str(tmp_path), "--exclude-qc", "--no-progress")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "prm800k_round-4_2023-02-01.jsonl",
        "stepwise_all-rounds_2023-02-01_no-qc.jsonl",
    ]
