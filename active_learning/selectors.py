"""Reads of the active-learning app: rounds with their progress, and the console's figures.

Each function runs a fixed number of grouped queries, whatever the number of rounds.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import connection
from django.db.models import Avg, Count, Exists, OuterRef, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from active_learning.models import Selection
from active_learning.selection import candidate_pool
from labeling.models import (
    Assignment,
    Generation,
    LabeledCompletion,
    Labeling,
    LabelingTask,
    Problem,
    Solution,
)
from labeling.selectors import qc_agreement_by_labeler
from training.models import PRMVersion, TrainingRun
from training.services import heldout_size


@dataclass(frozen=True)
class PRMMetric:
    """A metric on the PRM dashboard and where to find it in ``PRMVersion.metrics``.

    ``places`` are tried in order (first found wins): training stores held-out metrics at the top
    level, evaluations nest under "evaluation". Each place is (path to the value, path to the n it
    was measured on); ``unit`` names what n counts.
    """

    label: str
    unit: str
    places: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]


PRM_METRICS: list[PRMMetric] = [
    PRMMetric(
        "step AUROC",
        "steps",
        (
            (("step_auroc",), ("n_steps",)),
            (("evaluation", "step_auroc"), ("evaluation", "n_steps")),
        ),
    ),
    PRMMetric(
        "solution AUROC",
        "solutions",
        (
            (("solution_auroc",), ("n_outcome_solutions",)),
            (("evaluation", "solution_auroc"), ("evaluation", "n_outcome_solutions")),
        ),
    ),
    PRMMetric(
        "first-error F1",
        "solutions",
        (
            (("evaluation", "processbench", "f1"), ("evaluation", "processbench", "items")),
            (("processbench", "f1"), ("processbench", "items")),
            (("first_error", "f1"), ("first_error", "n")),
        ),
    ),
    PRMMetric(
        "best-of-N (PRM)",
        "problems",
        (
            (("evaluation", "best_of_n", "prm"), ("evaluation", "best_of_n", "problems")),
            (("best_of_n", "prm"), ("best_of_n", "problems")),
        ),
    ),
]


def round_get(*, number: int) -> Generation:
    return Generation.objects.select_related("prm_version", "launched_by").get(number=number)


def round_list() -> list[Generation]:
    return list(Generation.objects.select_related("prm_version", "launched_by").order_by("-number"))


def round_counts(generation_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Per round: where its tasks are, live leases, labelings, selected and wrong-answer shares.

    Regular tasks are counted once each, in exactly one of ``queued`` (open, nobody holds it),
    ``leased`` (open, at least one live lease), ``done``, ``paused`` and ``cancelled``, so those
    add up to ``tasks`` and queued + leased never exceeds it. ``leases`` counts the leases
    themselves (a task needing several labelings may have several). QC items are served to every
    labeler and never finish: they are ``qc_items``, outside the task counts. ``waiting`` is
    what the round still has to serve: queued plus paused (a paused round serves its paused
    tasks once resumed). ``imported`` counts labelings imported into the round (a PRM800K
    generation imported here has no tasks at all).
    """
    counts: dict[int, dict[str, Any]] = {
        gid: {
            "tasks": 0,
            "queued": 0,
            "leased": 0,
            "paused": 0,
            "cancelled": 0,
            "done": 0,
            "leases": 0,
            "qc_items": 0,
            "labelings": 0,
            "imported": 0,
            "found_error": 0,
            "selected": 0,
            "selected_wrong": 0,
        }
        for gid in generation_ids
    }
    if not generation_ids:
        return counts
    live = Assignment.objects.filter(task=OuterRef("pk"), state=Assignment.State.ACTIVE)
    tasks = (
        LabelingTask.objects.filter(generation_id__in=generation_ids)
        .annotate(held=Exists(live))
        .values("generation_id", "kind", "state", "held")
        .annotate(n=Count("id"))
    )
    for row in tasks:
        entry = counts[row["generation_id"]]
        if row["kind"] != LabelingTask.Kind.REGULAR:
            entry["qc_items"] += row["n"]
            continue
        entry["tasks"] += row["n"]
        if row["state"] == LabelingTask.State.OPEN:
            entry["leased" if row["held"] else "queued"] += row["n"]
        else:
            entry[row["state"]] += row["n"]
    leases = (
        Assignment.objects.filter(
            task__generation_id__in=generation_ids, state=Assignment.State.ACTIVE
        )
        .values("task__generation_id")
        .annotate(n=Count("id"))
    )
    for row in leases:
        counts[row["task__generation_id"]]["leases"] = row["n"]
    labelings = (
        Labeling.objects.filter(generation_id__in=generation_ids)
        .values("generation_id")
        .annotate(
            n=Count("id"),
            found=Count("id", filter=Q(finish_reason="found_error")),
            imported=Count("id", filter=Q(source=Labeling.Source.IMPORT)),
        )
    )
    for row in labelings:
        counts[row["generation_id"]]["labelings"] = row["n"]
        counts[row["generation_id"]]["found_error"] = row["found"]
        counts[row["generation_id"]]["imported"] = row["imported"]
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
        entry["waiting"] = entry["queued"] + entry["paused"]
        entry["unfinished"] = entry["waiting"]
        # Labels that came from a file, not from tasks served here: no progress to show.
        entry["is_import"] = entry["tasks"] == 0 and entry["imported"] > 0
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


def _lookup(metrics: dict, path: tuple[str, ...]) -> float | None:
    value: Any = metrics or {}
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def metric_value(metrics: dict, metric: PRMMetric) -> dict[str, Any] | None:
    """``{"value", "n", "unit"}`` from the first place that holds the metric (n may be None
    for metrics stored before their n was), or None when no place does."""
    for value_path, n_path in metric.places:
        value = _lookup(metrics, value_path)
        if value is not None:
            n = _lookup(metrics, n_path)
            return {"value": value, "n": None if n is None else int(n), "unit": metric.unit}
    return None


def _n_text(found: dict[str, Any]) -> str:
    return f"n={found['n'] if found['n'] is not None else '?'} {found['unit']}"


def _n_range(ns: list[int | None], unit: str) -> str:
    """The n behind a chart's points: one value or a range ("?" where one is unknown)."""
    if not ns:
        return ""
    known = sorted(n for n in ns if n is not None)
    if not known:
        text = "?"
    elif known[0] == known[-1]:
        text = str(known[0])
    else:
        text = f"{known[0]}–{known[-1]}"
    unknown = " (some unknown)" if known and len(known) < len(ns) else ""
    return f"n = {text} {unit}{unknown}"


def prm_dashboard() -> dict[str, Any]:
    """Versions (with each metric's n, held-out size and training data), recent training runs,
    and each plotted metric across generations."""
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
    for metric in PRM_METRICS:
        points, ns = [], []
        for g in generations:
            found = metric_value(g.prm_version.metrics, metric)
            if found is not None:
                points.append((g.number, found["value"], f"{g.prm_version.name}, {_n_text(found)}"))
                ns.append(found["n"])
        series.append({"label": metric.label, "points": points, "n": _n_range(ns, metric.unit)})
    return {
        "versions": [
            {
                "id": v.id,
                "name": v.name,
                "kind": v.kind,
                "state": v.state,
                "base_model": v.base_model,
                "created_at": v.created_at,
                "labelings": (v.data_snapshot or {}).get("labelings"),
                "heldout": heldout_size(v),
                "metrics": [
                    {"label": m.label, **(metric_value(v.metrics, m) or {"value": None})}
                    for m in PRM_METRICS
                ],
                "promotion": (v.metrics or {}).get("promotion"),
            }
            for v in versions
        ],
        "runs": runs,
        "series": series,
    }


def problem_splits() -> list[dict[str, Any]]:
    """Problems per split ("" for none), for the generation form's choices."""
    rows = Problem.objects.values("split").annotate(n=Count("id")).order_by("split")
    return [{"split": row["split"], "problems": row["n"]} for row in rows]


def labelings_total() -> int:
    return Labeling.objects.count()


def pool_summary() -> dict[str, Any]:
    """What the console's data page shows: problems, solutions by grade and origin, how many a
    round could still select (``selection.candidate_pool`` without a PRM), and labelings."""
    grades = dict(Solution.objects.values_list("grade").annotate(n=Count("id")).order_by())
    origins = (
        Solution.objects.values("source", "generator")
        .annotate(n=Count("id"))
        .order_by("source", "generator")
    )
    pool = candidate_pool(prm_version_id=None)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM ({pool.sql}) pool", list(pool.params))
        (candidates,) = cursor.fetchone()
    labelings = dict(Labeling.objects.values_list("source").annotate(n=Count("id")).order_by())
    return {
        "problems": Problem.objects.count(),
        "solutions": sum(grades.values()),
        "grades": {g: grades.get(g, 0) for g in Solution.Grade.values},
        "origins": [
            {"source": row["source"], "generator": row["generator"], "solutions": row["n"]}
            for row in origins
        ],
        "candidates": candidates,
        "labelings": sum(labelings.values()),
        "labelings_by_source": labelings,
    }
