"""Reads of the active-learning app: rounds with their progress, and the console's figures.

Each function runs a fixed number of grouped queries, whatever the number of rounds.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

from django.db.models import Avg, Count, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from active_learning.models import Generation, Selection
from labeling.models import LabeledCompletion, Labeling, LabelingTask, Solution
from training.models import PRMVersion, TrainingRun

# Metrics plotted on the PRM dashboard: (label, paths into PRMVersion.metrics, first found wins).
# Training stores held-out metrics at the top level; evaluations nest under "evaluation".
PRM_METRICS: list[tuple[str, list[tuple[str, ...]]]] = [
    ("step AUROC", [("step_auroc",), ("evaluation", "step_auroc")]),
    ("solution AUROC", [("solution_auroc",), ("evaluation", "solution_auroc")]),
    (
        "first-error F1",
        [("evaluation", "processbench", "f1"), ("processbench", "f1"), ("first_error", "f1")],
    ),
    ("best-of-N (PRM)", [("evaluation", "best_of_n", "prm"), ("best_of_n", "prm")]),
]


def round_get(*, number: int) -> Generation:
    return Generation.objects.select_related("prm_version", "launched_by").get(number=number)


def round_list() -> list[Generation]:
    return list(Generation.objects.select_related("prm_version", "launched_by").order_by("-number"))


def round_counts(generation_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Per round: tasks by state, live leases, labelings, selected and wrong-answer shares."""
    from labeling.models import Assignment

    counts: dict[int, dict[str, Any]] = {
        gid: {
            "tasks": 0,
            "queued": 0,
            "paused": 0,
            "cancelled": 0,
            "done": 0,
            "leased": 0,
            "labelings": 0,
            "found_error": 0,
            "selected": 0,
            "selected_wrong": 0,
        }
        for gid in generation_ids
    }
    if not generation_ids:
        return counts
    tasks = (
        LabelingTask.objects.filter(generation_id__in=generation_ids)
        .values("generation_id", "state")
        .annotate(n=Count("id"))
    )
    names = {"open": "queued", "paused": "paused", "cancelled": "cancelled", "done": "done"}
    for row in tasks:
        entry = counts[row["generation_id"]]
        entry["tasks"] += row["n"]
        entry[names.get(row["state"], row["state"])] = row["n"]
    leased = (
        Assignment.objects.filter(
            task__generation_id__in=generation_ids, state=Assignment.State.ACTIVE
        )
        .values("task__generation_id")
        .annotate(n=Count("id"))
    )
    for row in leased:
        counts[row["task__generation_id"]]["leased"] = row["n"]
    labelings = (
        Labeling.objects.filter(generation_id__in=generation_ids)
        .values("generation_id")
        .annotate(n=Count("id"), found=Count("id", filter=Q(finish_reason="found_error")))
    )
    for row in labelings:
        counts[row["generation_id"]]["labelings"] = row["n"]
        counts[row["generation_id"]]["found_error"] = row["found"]
    selected = (
        Selection.objects.filter(generation_id__in=generation_ids)
        .values("generation_id")
        .annotate(n=Count("id"), wrong=Count("id", filter=Q(solution__grade=Solution.Grade.WRONG)))
    )
    for row in selected:
        counts[row["generation_id"]]["selected"] = row["n"]
        counts[row["generation_id"]]["selected_wrong"] = row["wrong"]
    for entry in counts.values():
        entry["wrong_answer_share"] = (
            entry["selected_wrong"] / entry["selected"] if entry["selected"] else None
        )
        entry["found_error_share"] = (
            entry["found_error"] / entry["labelings"] if entry["labelings"] else None
        )
        entry["unfinished"] = entry["queued"] + entry["paused"]
    return counts


def labels_per_day(*, days: int = 30) -> list[dict[str, Any]]:
    since = timezone.now() - timedelta(days=days)
    rows = (
        Labeling.objects.filter(timestamp__gte=since)
        .annotate(day=TruncDate("timestamp"))
        .values("day")
        .annotate(n=Count("id"))
        .order_by("day")
    )
    return [{"day": row["day"].isoformat(), "labelings": row["n"]} for row in rows]


def label_distribution() -> dict[str, dict[str, int]]:
    """Step ratings (+1/0/-1) of the solutions' own steps, per generation number."""
    rows = (
        LabeledCompletion.objects.filter(position=0, rating__isnull=False)
        .values("labeled_step__labeling__generation__number", "rating")
        .annotate(n=Count("id"))
    )
    out: dict[str, dict[str, int]] = defaultdict(lambda: {"1": 0, "0": 0, "-1": 0})
    for row in rows:
        number = row["labeled_step__labeling__generation__number"]
        key = "none" if number is None else str(number)
        out[key][str(row["rating"])] = row["n"]
    return dict(out)


def labeler_quality() -> list[dict[str, Any]]:
    """Per labeler: QC agreement with gold (from labeling.selectors) and throughput."""
    from labeling.selectors import qc_agreement_by_labeler

    qc = {row["labeler_id"]: row for row in qc_agreement_by_labeler()}
    rows = (
        Labeling.objects.filter(source=Labeling.Source.WORKSPACE)
        .values("labeler_id", "labeler__user__username")
        .annotate(n=Count("id"), mean_ms=Avg("total_time_ms"))
        .order_by("labeler__user__username")
    )
    out = []
    for row in rows:
        q = qc.get(row["labeler_id"], {})
        out.append(
            {
                "labeler": row["labeler__user__username"],
                "labelings": row["n"],
                "mean_time_ms": round(row["mean_ms"]) if row["mean_ms"] is not None else None,
                "qc_items": q.get("qc_items", 0),
                "qc_agreement": q.get("agreement"),
            }
        )
    return out


def _metric(metrics: dict, paths: list[tuple[str, ...]]) -> float | None:
    for path in paths:
        value: Any = metrics or {}
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def prm_dashboard() -> dict[str, Any]:
    """Versions, recent training runs, and each plotted metric across generations."""
    versions = list(PRMVersion.objects.order_by("created_at", "id"))
    runs = list(
        TrainingRun.objects.select_related("prm_version").order_by("-created_at", "-id")[:20]
    )
    generations = list(
        Generation.objects.filter(prm_version__isnull=False, number__gte=0)
        .select_related("prm_version")
        .order_by("number")
    )
    series = []
    for label, path in PRM_METRICS:
        points = [
            (g.number, value, g.prm_version.name)
            for g in generations
            if (value := _metric(g.prm_version.metrics, path)) is not None
        ]
        series.append({"label": label, "points": points})
    return {
        "versions": [
            {
                "id": v.id,
                "name": v.name,
                "kind": v.kind,
                "state": v.state,
                "created_at": v.created_at,
                "metrics": {label: _metric(v.metrics, path) for label, path in PRM_METRICS},
            }
            for v in versions
        ],
        "runs": runs,
        "series": series,
    }
