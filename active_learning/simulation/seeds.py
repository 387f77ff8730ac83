"""Paired seeds: the efficiency ratios of each comparison per seed, with bootstrap intervals."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from active_learning.simulation.base import CONTROL_ARM
from active_learning.simulation.efficiency import (
    EfficiencyRatio,
    efficiency_ratio,
    ratio_at_common_best,
)
from active_learning.stats import BootstrapInterval, geometric_mean, percentile_bootstrap

if TYPE_CHECKING:
    from active_learning.simulation.loop import SimulationResult


@dataclass
class Comparison:
    """One pair of arms over the seeds: each seed's ratio and a bootstrap interval."""

    arm: str  # the arm whose efficiency is measured ...
    baseline: str  # ... against this one
    reading: str  # "common best" or "active's best"
    ratios: list[EfficiencyRatio]
    interval: BootstrapInterval | None

    @property
    def values(self) -> list[float]:
        return [value for r in self.ratios if (value := _ratio_value(r)) is not None]

    @property
    def censored(self) -> int:
        return sum(1 for r in self.ratios if r.ratio is None and r.ratio_lower_bound is not None)

    def describe(self) -> str:
        head = f"{self.arm} vs {self.baseline}, at {self.reading}"
        if self.interval is None:
            return f"{head}: {len(self.values)} seed(s) with a ratio, too few for an interval"
        verdict = "excludes" if self.interval.excludes(1.0) else "includes"
        censored = (
            f"; {self.censored} seed(s) counted at their lower bound" if self.censored else ""
        )
        return (
            f"{head}: geometric mean {self.interval.describe()}, the interval {verdict} 1.0"
            f"{censored}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "arm": self.arm,
            "baseline": self.baseline,
            "reading": self.reading,
            "ratios": [dataclasses.asdict(r) for r in self.ratios],
            "values": self.values,
            "censored": self.censored,
            "interval": None if self.interval is None else dataclasses.asdict(self.interval),
        }


def _ratio_value(ratio: EfficiencyRatio) -> float | None:
    return ratio.ratio if ratio.ratio is not None else ratio.ratio_lower_bound


@dataclass
class SeedsSummary:
    """Paired seeds: the data-efficiency ratio per seed and a percentile bootstrap interval of
    the geometric mean over seeds, for each comparison.

    Headline: active vs uniform at the best quality both reach (``ratio_at_common_best``:
    never censored, symmetric between the arms). Also given: the same pair read at active's
    best (``efficiency_ratio``; a seed where uniform never gets there counts with its lower
    bound), and with the control arm, active vs wrong_random and wrong_random vs uniform.
    """

    metric: str
    seeds: list[int]
    comparisons: list[Comparison]

    @property
    def headline(self) -> Comparison:
        return self.comparisons[0]

    def describe(self) -> str:
        return "\n".join(
            f"data efficiency on {self.metric} over {len(self.seeds)} seeds, {c.describe()}"
            for c in self.comparisons
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "seeds": self.seeds,
            "comparisons": [c.as_dict() for c in self.comparisons],
        }


def summarize_seeds(
    results: Sequence[SimulationResult],
    metric: str | None = None,
    *,
    resamples: int = 2000,
    confidence: float = 0.95,
) -> SeedsSummary:
    """Per-seed efficiency ratios of paired runs and the bootstrap interval of their mean."""
    if not results:
        raise ValueError("no simulation results to summarize")
    metric = metric or results[0].settings.metric
    pairs = [("active", "uniform", "common best"), ("active", "uniform", "active's best")]
    if all(r.settings.control for r in results):
        pairs += [
            ("active", CONTROL_ARM, "common best"),
            (CONTROL_ARM, "uniform", "common best"),
        ]
    comparisons = []
    for arm, baseline, reading in pairs:
        measure = ratio_at_common_best if reading == "common best" else efficiency_ratio
        ratios = [measure(r.curve(arm, metric), r.curve(baseline, metric)) for r in results]
        comparison = Comparison(arm, baseline, reading, ratios, None)
        if len(comparison.values) >= 2:
            comparison.interval = percentile_bootstrap(
                comparison.values, geometric_mean, resamples=resamples, confidence=confidence
            )
        comparisons.append(comparison)
    return SeedsSummary(
        metric=metric, seeds=[r.settings.seed for r in results], comparisons=comparisons
    )


def write_summary(summary: SeedsSummary, results: Sequence[SimulationResult], out: Path) -> Path:
    """summary.md and summary.json under out: every comparison per seed, and the intervals."""
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# Data efficiency over {len(results)} paired seeds ({summary.metric})", ""]
    for comparison in summary.comparisons:
        lines += [
            f"## {comparison.arm} vs {comparison.baseline}, at {comparison.reading}",
            "",
            "| seed | ratio |",
            "|---|---|",
        ]
        for result, ratio in zip(results, comparison.ratios, strict=True):
            text = ratio.describe().replace("active", comparison.arm)
            text = text.replace("uniform", comparison.baseline)
            lines.append(f"| {result.settings.seed} | {text} |")
        lines += ["", comparison.describe(), ""]
    (out / "summary.md").write_text("\n".join(lines))
    path = out / "summary.json"
    path.write_text(json.dumps(summary.as_dict(), indent=2, sort_keys=True) + "\n")
    return path
