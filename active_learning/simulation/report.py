"""Writing and reading a simulation's results: CSV, Markdown, JSON and the curves' plot."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import Any

from active_learning.simulation.base import CONTROL_ARM, METRICS
from active_learning.simulation.efficiency import ratio_at_uniform_best
from active_learning.simulation.loop import RoundResult, SimulationResult, SimulationSettings

# Wall-clock training time varies run to run; it goes to the JSON only, so the table of a seed
# is always the same.
COLUMNS = [f.name for f in dataclasses.fields(RoundResult) if f.name != "train_seconds"]


def write_report(result: SimulationResult, out: Path, *, title: str = "") -> dict[str, Path]:
    """Write simulation.csv, simulation.md, simulation.json and simulation.png under out."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "csv": out / "simulation.csv",
        "markdown": out / "simulation.md",
        "json": out / "simulation.json",
        "plot": out / "simulation.png",
    }
    with open(paths["csv"], "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in result.rows:
            writer.writerow(_table_row(row))

    ratios = {metric: result.ratio(metric) for metric in METRICS}
    lines = [f"# {title}" if title else "# Simulation", ""]
    lines.append("| " + " | ".join(COLUMNS) + " |")
    lines.append("|" + "---|" * len(COLUMNS))
    for row in result.rows:
        lines.append("| " + " | ".join(str(v) for v in _table_row(row).values()) + " |")
    lines.append("")
    for metric, ratio in ratios.items():
        marker = " (headline)" if metric == result.settings.metric else ""
        lines.append(f"- data efficiency on {metric}{marker}: {ratio.describe()}")
        reverse = ratio_at_uniform_best(
            result.curve("active", metric), result.curve("uniform", metric)
        )
        lines.append(f"  - read at uniform's best instead: {reverse}")
    paths["markdown"].write_text("\n".join(lines) + "\n")

    summary = {
        "settings": dataclasses.asdict(result.settings),
        "efficiency": {metric: dataclasses.asdict(r) for metric, r in ratios.items()},
        # full precision, so load_result reproduces the report exactly
        "rows": [dataclasses.asdict(r) for r in result.rows],
    }
    paths["json"].write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    plot_curves(result, paths["plot"], title=title)
    return paths


def load_result(path: Path) -> SimulationResult:
    """Read back a simulation.json (to redraw the table and plot without training again)."""
    data = json.loads(Path(path).read_text())
    return SimulationResult(
        settings=SimulationSettings(**data["settings"]),
        rows=[RoundResult(**row) for row in data["rows"]],
    )


def _table_row(row: RoundResult) -> dict[str, Any]:
    values = _formatted(row)
    return {key: values[key] for key in COLUMNS}


def _formatted(row: RoundResult) -> dict[str, Any]:
    values = dataclasses.asdict(row)
    for key in ("wrong_answer_share", "negative_share", "step_auroc", "best_of_n"):
        values[key] = round(values[key], 4)
    return values


def plot_curves(result: SimulationResult, path: Path, *, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(1, len(METRICS), figsize=(10, 4), dpi=100)
    styles = {
        "active": ("tab:red", "o", "active (convincing wrong answer)"),
        "uniform": ("tab:blue", "s", "uniform"),
        CONTROL_ARM: ("tab:gray", "^", "wrong answers, random order (control)"),
    }
    for ax, metric in zip(axes, METRICS, strict=True):
        for arm in result.settings.arms:
            points = result.curve(arm, metric)
            color, marker, label = styles[arm]
            ax.plot(
                [p[0] for p in points],
                [p[1] for p in points],
                color=color,
                marker=marker,
                label=label,
            )
        ax.set_xlabel("solutions labeled")
        ax.set_ylabel(
            {"step_auroc": "held-out step AUROC", "best_of_n": "held-out best-of-N accuracy"}[
                metric
            ]
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ratio = result.ratio()
    fig.suptitle(
        (title + "\n" if title else "")
        + f"data efficiency ({result.settings.metric}): {ratio.describe()}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
