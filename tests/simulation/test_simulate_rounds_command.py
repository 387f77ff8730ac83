"""`manage.py simulate_rounds --quick` end to end: real tiny PRMs trained on CPU, real outputs.

The arms run in a scratch database the command creates and drops, so these tests commit
(``transaction=True``): the command has to leave the test database as it found it.
"""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError


def _scratch_databases() -> set[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", ["%_sim_%"])
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_quick_run_writes_table_plot_and_ratio(tmp_path):
    import torch

    torch.set_num_threads(2)
    out = tmp_path / "sim"
    stdout = io.StringIO()
    scratch_before = _scratch_databases()
    call_command("simulate_rounds", "--quick", "--seed", "3", "--out", str(out), stdout=stdout)
    log = stdout.getvalue()

    with open(out / "simulation.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["arm"], r["round"], r["strategy"]) for r in rows] == [
        ("active", "1", "uniform"),
        ("active", "2", "convincing_wrong_answer"),
        ("uniform", "1", "uniform"),
        ("uniform", "2", "uniform"),
    ]
    # --quick labels 8 solutions per round; both arms start from the same uniform round
    assert [int(r["solutions_labeled"]) for r in rows] == [8, 16, 8, 16]
    assert rows[0] == {**rows[2], "arm": "active"}
    for row in rows:
        assert 0.0 <= float(row["step_auroc"]) <= 1.0
        assert 0.0 <= float(row["best_of_n"]) <= 1.0
        assert int(row["steps_labeled"]) >= int(row["solutions_labeled"])
    # the active round 2 batch is mostly wrong-answer solutions (80% of 8 when the pool has them)
    assert float(rows[1]["wrong_answer_share"]) >= 0.5

    summary = json.loads((out / "simulation.json").read_text())
    headline = summary["efficiency"]["step_auroc"]
    assert headline["active_labels"] in (8.0, 16.0)
    assert (headline["ratio"] is None) != (headline["ratio_lower_bound"] is None)
    assert (out / "simulation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "data efficiency on step_auroc (headline)" in (out / "simulation.md").read_text()
    assert "data efficiency (step_auroc):" in log
    # the scratch database is gone and the test database untouched
    assert "the arms run in the scratch database" in log

    from labeling.models import Labeling, Solution

    assert not Solution.objects.exists() and not Labeling.objects.exists()
    # Only scratch databases this run made count: another simulation may share the server.
    assert _scratch_databases() <= scratch_before


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_quick_run_with_a_prm_as_labeler(tmp_path):
    stdout = io.StringIO()
    call_command(
        "simulate_rounds", "--quick", "--oracle", "prm", "--out", str(tmp_path), stdout=stdout
    )
    assert "training the labeling PRM on 64 synthetic solutions" in stdout.getvalue()
    with open(tmp_path / "simulation.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["solutions_labeled"]) for r in rows] == [8, 16, 8, 16]
    assert [r["strategy"] for r in rows] == [
        "uniform",
        "convincing_wrong_answer",
        "uniform",
        "uniform",
    ]
    for row in rows:
        assert 0.0 <= float(row["negative_share"]) <= 1.0
        assert 0.0 <= float(row["step_auroc"]) <= 1.0 or row["step_auroc"] == "nan"


def test_bad_options_are_refused_before_any_work(tmp_path):
    with pytest.raises(CommandError, match="--rounds must be at least 1"):
        call_command("simulate_rounds", "--quick", "--rounds", "0", "--out", str(tmp_path))
    with pytest.raises(CommandError, match="--wrong-share must be between 0 and 1"):
        call_command("simulate_rounds", "--quick", "--wrong-share", "1.5", "--out", str(tmp_path))
    with pytest.raises(CommandError, match="only goes with --oracle prm"):
        call_command(
            "simulate_rounds", "--quick", "--oracle-checkpoint", "/nope", "--out", str(tmp_path)
        )
    with pytest.raises(CommandError, match="--base-model /nope is not a directory"):
        call_command("simulate_rounds", "--quick", "--base-model", "/nope", "--out", str(tmp_path))
    assert not any(tmp_path.iterdir())


def test_a_budget_beyond_the_pool_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="fewer than rounds x per_round"):
        call_command(
            "simulate_rounds",
            "--quick",
            "--rounds",
            "3",
            "--per-round",
            "40",
            "--out",
            str(tmp_path),
        )
    assert not (tmp_path / "simulation.csv").exists()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_same_seed_same_table(tmp_path):
    # One round keeps it short; it still builds, trains and evaluates a real model twice.
    for name in ("first", "second"):
        call_command(
            "simulate_rounds",
            "--quick",
            "--rounds",
            "1",
            "--seed",
            "2",
            "--out",
            str(tmp_path / name),
            stdout=io.StringIO(),
        )
    first = (tmp_path / "first" / "simulation.csv").read_text()
    assert first == (tmp_path / "second" / "simulation.csv").read_text()
    assert len(first.splitlines()) == 3


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_paired_seeds_write_a_summary_with_a_bootstrap_interval(tmp_path):
    stdout = io.StringIO()
    call_command(
        "simulate_rounds",
        "--quick",
        "--seeds",
        "1",
        "2",
        "--out",
        str(tmp_path),
        stdout=stdout,
    )
    for seed in (1, 2):
        assert (tmp_path / f"seed-{seed}" / "simulation.csv").exists()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["seeds"] == [1, 2]
    headline = summary["comparisons"][0]
    assert (headline["arm"], headline["baseline"], headline["reading"]) == (
        "active",
        "uniform",
        "common best",
    )
    assert len(headline["ratios"]) == 2 and headline["censored"] == 0
    interval = headline["interval"]
    assert interval["resamples"] == 2000 and interval["n"] == 2
    assert interval["low"] <= interval["estimate"] <= interval["high"]
    # with two seeds the resampled geometric means lie between the two values
    assert min(headline["values"]) == pytest.approx(interval["low"])
    assert "percentile bootstrap" in (tmp_path / "summary.md").read_text()
    assert "over 2 seeds" in stdout.getvalue()


def test_repeated_seeds_are_refused(tmp_path):
    with pytest.raises(CommandError, match="--seeds must not repeat a seed"):
        call_command("simulate_rounds", "--quick", "--seeds", "1", "1", "--out", str(tmp_path))
