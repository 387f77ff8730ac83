"""Statistics for paired simulation seeds: a percentile bootstrap confidence interval.

No Django and no numpy: the simulation's summary runs anywhere, and a fixed ``seed`` makes the
interval reproducible to the last digit.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass


def geometric_mean(values: Sequence[float]) -> float:
    """exp(mean(log v)): the average of ratios, where 2x and 0.5x cancel out."""
    if not values:
        raise ValueError("the geometric mean needs at least one value")
    if any(not v > 0 for v in values):
        raise ValueError("the geometric mean needs positive values")
    return math.exp(sum(math.log(v) for v in values) / len(values))


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """The q-quantile of already sorted values, linear between order statistics (numpy's
    default): position q * (n - 1)."""
    if not sorted_values:
        raise ValueError("no values")
    if not 0.0 <= q <= 1.0:
        raise ValueError("q must be between 0 and 1")
    position = q * (len(sorted_values) - 1)
    below = math.floor(position)
    above = min(below + 1, len(sorted_values) - 1)
    fraction = position - below
    return sorted_values[below] + fraction * (sorted_values[above] - sorted_values[below])


@dataclass(frozen=True)
class BootstrapInterval:
    estimate: float  # the statistic on the values themselves
    low: float
    high: float
    confidence: float
    resamples: int
    n: int

    def excludes(self, value: float) -> bool:
        return not self.low <= value <= self.high

    def describe(self, unit: str = "x") -> str:
        return (
            f"{self.estimate:.2f}{unit} ({self.confidence:.0%} CI {self.low:.2f}{unit}-"
            f"{self.high:.2f}{unit}, percentile bootstrap, {self.resamples} resamples of "
            f"{self.n})"
        )


def percentile_bootstrap(
    values: Sequence[float],
    statistic: Callable[[Sequence[float]], float] = geometric_mean,
    *,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> BootstrapInterval:
    """Percentile bootstrap: draw ``len(values)`` values with replacement ``resamples`` times,
    compute ``statistic`` on each draw, and take the (1 - confidence) / 2 and
    (1 + confidence) / 2 quantiles of those statistics as the interval.

    With few values (5 seeds) the interval is coarse and tends to be too narrow; it says how much
    the seeds disagree, not more.
    """
    if len(values) < 2:
        raise ValueError("a bootstrap needs at least two values")
    if resamples < 1:
        raise ValueError("resamples must be at least 1")
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be between 0 and 1")
    rng = random.Random(seed)
    n = len(values)
    draws = sorted(
        statistic([values[rng.randrange(n)] for _ in range(n)]) for _ in range(resamples)
    )
    tail = (1.0 - confidence) / 2.0
    return BootstrapInterval(
        estimate=statistic(values),
        low=quantile(draws, tail),
        high=quantile(draws, 1.0 - tail),
        confidence=confidence,
        resamples=resamples,
        n=n,
    )
