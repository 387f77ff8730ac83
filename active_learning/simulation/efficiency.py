"""Data efficiency: how many labels each arm needs to reach a quality, and the ratio of the two."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def _running_max(values: Sequence[float]) -> list[float]:
    best = -math.inf
    out = []
    for value in values:
        best = max(best, value)
        out.append(best)
    return out


def labels_to_reach(
    labels: Sequence[float], quality: Sequence[float], target: float
) -> float | None:
    """Fewest labels at which the piecewise-linear curve through (labels, quality) reaches target.

    The curve is first replaced by its running maximum (the platform keeps the best model so far:
    a new PRM becomes active only if it does not regress). None when it never gets there.
    """
    envelope = _running_max(quality)
    for i, value in enumerate(envelope):
        if value >= target:
            if i == 0 or envelope[i] == envelope[i - 1]:
                return float(labels[i])
            x0, x1 = labels[i - 1], labels[i]
            y0, y1 = envelope[i - 1], envelope[i]
            return float(x0 + (target - y0) * (x1 - x0) / (y1 - y0))
    return None


@dataclass
class EfficiencyRatio:
    """How many labels uniform selection needs for the quality active learning reaches."""

    target_quality: float
    active_labels: float
    uniform_labels: float | None  # None: uniform never reaches the target within its budget
    ratio: float | None
    ratio_lower_bound: float | None  # set when uniform never reaches: ratio > this

    def describe(self) -> str:
        if math.isnan(self.target_quality):
            return "undefined (a curve has no finite quality value)"
        if self.ratio is not None:
            return (
                f"{self.ratio:.2f}x (uniform needs {self.uniform_labels:.1f} labels for the "
                f"quality {self.target_quality:.4f} active reaches with {self.active_labels:.0f})"
            )
        return (
            f"> {self.ratio_lower_bound:.2f}x (uniform never reaches the quality "
            f"{self.target_quality:.4f} that active reaches with {self.active_labels:.0f} labels)"
        )


def efficiency_ratio(
    active: Sequence[tuple[float, float]], uniform: Sequence[tuple[float, float]]
) -> EfficiencyRatio:
    """Data-efficiency ratio from two curves of (labels, quality) points, in label order.

    Target = the best quality active learning reaches within its budget; active_labels = the
    labels at which it first gets there. uniform_labels = where uniform's running-max curve,
    linearly interpolated between rounds, first reaches the target. Ratio = uniform / active.
    If uniform never gets there, the ratio is only bounded below by uniform's budget / active.
    """
    if not active or not uniform:
        raise ValueError("both curves need at least one point")
    # A round whose metric is undefined (e.g. no negative held-out step) is left out.
    active = [p for p in active if math.isfinite(p[1])]
    uniform = [p for p in uniform if math.isfinite(p[1])]
    if not active or not uniform:
        return EfficiencyRatio(math.nan, math.nan, None, None, None)
    a_labels = [p[0] for p in active]
    a_quality = [p[1] for p in active]
    u_labels = [p[0] for p in uniform]
    u_quality = [p[1] for p in uniform]
    target = max(a_quality)
    active_needed = labels_to_reach(a_labels, a_quality, target)
    assert active_needed is not None  # the target is one of active's own points
    uniform_needed = labels_to_reach(u_labels, u_quality, target)
    if uniform_needed is None:
        return EfficiencyRatio(target, active_needed, None, None, u_labels[-1] / active_needed)
    return EfficiencyRatio(
        target, active_needed, uniform_needed, uniform_needed / active_needed, None
    )


def ratio_at_common_best(
    active: Sequence[tuple[float, float]], uniform: Sequence[tuple[float, float]]
) -> EfficiencyRatio:
    """Labels each arm needs for the best quality BOTH arms reach (the lower of the two bests).

    Both arms always get there, so the ratio is never censored, and swapping the arms gives
    exactly 1 / ratio. That makes it the fair per-seed figure to average: ``efficiency_ratio``
    aims at active's best, which uniform often never reaches, and counting those seeds at their
    lower bound (>= 1) pushes the average above 1 even when the arms are alike. Running maximum
    and interpolation as in ``labels_to_reach``.
    """
    if not active or not uniform:
        raise ValueError("both curves need at least one point")
    active = [p for p in active if math.isfinite(p[1])]
    uniform = [p for p in uniform if math.isfinite(p[1])]
    if not active or not uniform:
        return EfficiencyRatio(math.nan, math.nan, None, None, None)
    target = min(max(q for _, q in active), max(q for _, q in uniform))
    active_needed = labels_to_reach([x for x, _ in active], [q for _, q in active], target)
    uniform_needed = labels_to_reach([x for x, _ in uniform], [q for _, q in uniform], target)
    assert active_needed is not None and uniform_needed is not None
    return EfficiencyRatio(
        target, active_needed, uniform_needed, uniform_needed / active_needed, None
    )


def ratio_at_uniform_best(
    active: Sequence[tuple[float, float]], uniform: Sequence[tuple[float, float]]
) -> str:
    """The ratio read the other way round: at the best quality uniform reaches within its budget,
    how many labels each arm needs. Always defined when active learning gets there at all, so it
    complements ``efficiency_ratio`` when that is only a lower bound.
    """
    active = [p for p in active if math.isfinite(p[1])]
    uniform = [p for p in uniform if math.isfinite(p[1])]
    if not active or not uniform:
        return "undefined (a curve has no finite quality value)"
    target = max(q for _, q in uniform)
    uniform_needed = labels_to_reach([x for x, _ in uniform], [q for _, q in uniform], target)
    active_needed = labels_to_reach([x for x, _ in active], [q for _, q in active], target)
    assert uniform_needed is not None
    if active_needed is None:
        return (
            f"active never reaches uniform's best {target:.4f} "
            f"(uniform gets there with {uniform_needed:.0f} labels)"
        )
    return (
        f"{uniform_needed / active_needed:.2f}x (uniform's best {target:.4f}: uniform needs "
        f"{uniform_needed:.0f} labels, active {active_needed:.1f})"
    )
