"""Inter-annotator agreement on steps rated by several labelers (Krippendorff's alpha, ordinal).

A unit is one step of one solution, rated by its own text (completion 0). Ratings -1 < 0 < 1
are ordinal, so a Bad/Great disagreement weighs more than Okay/Great.
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections import defaultdict
from typing import Any

import krippendorff
import numpy as np

from labeling.models import Generation, LabeledCompletion, Labeler
from labeling.selectors import qc_agreement_by_labeler

RATINGS = [-1, 0, 1]
Unit = tuple[int, int]  # (solution id, step position)


def ordinal_alpha(ratings_by_coder: dict[Any, dict[Unit, int]]) -> float | None:
    """Krippendorff's ordinal alpha over units rated by at least two coders.

    None when it is undefined: fewer than two coders on any unit, or no variation at all.
    """
    per_unit: dict[Unit, int] = defaultdict(int)
    for ratings in ratings_by_coder.values():
        for unit in ratings:
            per_unit[unit] += 1
    units = sorted(unit for unit, n in per_unit.items() if n >= 2)
    if not units:
        return None
    matrix = np.full((len(ratings_by_coder), len(units)), np.nan)
    for row, ratings in enumerate(ratings_by_coder.values()):
        for col, unit in enumerate(units):
            if unit in ratings:
                matrix[row, col] = ratings[unit]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # 0/0 when every rating is equal
        alpha = krippendorff.alpha(
            reliability_data=matrix, level_of_measurement="ordinal", value_domain=RATINGS
        )
    return None if math.isnan(alpha) else float(alpha)


def labeler_vs_rest_alpha(
    labeler_id: Any, ratings_by_coder: dict[Any, dict[Unit, int]]
) -> tuple[float | None, int]:
    """Alpha between one labeler and the others' consensus (lower median) on shared units.

    Returns (alpha, number of shared units).
    """
    own = ratings_by_coder.get(labeler_id, {})
    others: dict[Unit, list[int]] = defaultdict(list)
    for coder, ratings in ratings_by_coder.items():
        if coder == labeler_id:
            continue
        for unit, rating in ratings.items():
            if unit in own:
                others[unit].append(rating)
    consensus = {unit: statistics.median_low(values) for unit, values in others.items()}
    shared = {unit: own[unit] for unit in consensus}
    return ordinal_alpha({"labeler": shared, "rest": consensus}), len(consensus)


def _ratings() -> dict[int | None, dict[int, dict[Unit, int]]]:
    """Step ratings by generation, then labeler, then (solution, position): one pass."""
    rows = LabeledCompletion.objects.filter(position=0, rating__isnull=False)
    by_generation: dict[int | None, dict[int, dict[Unit, int]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    for generation_id, labeler_id, solution_id, position, rating in rows.values_list(
        "labeled_step__labeling__generation_id",
        "labeled_step__labeling__labeler_id",
        "labeled_step__labeling__solution_id",
        "labeled_step__position",
        "rating",
    ).iterator(chunk_size=5000):
        by_generation[generation_id][labeler_id][(solution_id, position)] = rating
    return by_generation


def _shared_units(ratings_by_coder: dict[int, dict[Unit, int]]) -> int:
    seen: dict[Unit, int] = defaultdict(int)
    for ratings in ratings_by_coder.values():
        for unit in ratings:
            seen[unit] += 1
    return sum(1 for n in seen.values() if n >= 2)


def agreement_report() -> dict[str, list[dict[str, Any]]]:
    """Everything the admin agreement page shows: alpha per generation and per labeler, QC."""
    by_generation = _ratings()
    generations = []
    for generation in Generation.objects.order_by("number"):
        ratings = by_generation.get(generation.pk)
        if not ratings:
            continue
        generations.append(
            {
                "generation": generation.number,
                "labelers": len(ratings),
                "shared_steps": _shared_units(ratings),
                "alpha": ordinal_alpha(ratings),
            }
        )
    # Across generations (phase 1 lines have none): a step one labeler rated in two generations
    # counts once for them.
    everything: dict[int, dict[Unit, int]] = defaultdict(dict)
    for ratings in by_generation.values():
        for labeler_id, units in ratings.items():
            everything[labeler_id].update(units)
    names = {
        labeler.pk: str(labeler)
        for labeler in Labeler.objects.filter(pk__in=everything).select_related("user")
    }
    labelers = []
    for labeler_id in sorted(everything):
        alpha, shared = labeler_vs_rest_alpha(labeler_id, everything)
        if shared:
            labelers.append(
                {
                    "labeler_id": labeler_id,
                    "labeler": names.get(labeler_id, str(labeler_id)),
                    "shared_steps": shared,
                    "alpha_vs_rest": alpha,
                }
            )
    return {"generations": generations, "labelers": labelers, "qc": qc_agreement_by_labeler()}
