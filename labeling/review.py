"""Reads behind the console's review screen: what labelers wrote (give-up and bad-problem
reasons, flagged steps), where they disagree, each labeler's screening / QC / agreement figures,
and one labeling as its labeler saw it.

Every list takes the same filters (labeler, round number, problem) and returns a queryset or a
page of keys, so a page costs a fixed number of queries whatever the data's size.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Exists, F, Max, Min, OuterRef, Q, QuerySet, Subquery

from labeling.agreement import agreement_report
from labeling.models import (
    Generation,
    LabeledCompletion,
    LabeledStep,
    Labeler,
    Labeling,
    LabelingTask,
    Problem,
    Step,
)

UNFINISHED = (Labeling.FinishReason.GIVE_UP, Labeling.FinishReason.BAD_PROBLEM)


@dataclass(frozen=True, kw_only=True)
class ReviewFilter:
    """Which labelings a review list covers; None means any."""

    labeler_id: int | None = None
    generation: int | None = None  # the round's number (-1: screening)
    problem_id: int | None = None

    def labelings(self, prefix: str = "") -> Q:
        """The filter as a Q on Labeling, or on a model reaching it through ``prefix``."""
        q = Q()
        if self.labeler_id is not None:
            q &= Q(**{f"{prefix}labeler_id": self.labeler_id})
        if self.generation is not None:
            q &= Q(**{f"{prefix}generation__number": self.generation})
        if self.problem_id is not None:
            q &= Q(**{f"{prefix}solution__problem_id": self.problem_id})
        return q


def _labelings(review_filter: ReviewFilter) -> QuerySet[Labeling]:
    return (
        Labeling.objects.filter(review_filter.labelings())
        .select_related("labeler__user", "generation", "solution__problem")
        .order_by("-timestamp", "-id")
    )


def labelings_browse(review_filter: ReviewFilter) -> QuerySet[Labeling]:
    """Every matching labeling, newest first, with its flag count and whether a QC or
    screening item took its gold from it."""
    flags = LabeledCompletion.objects.filter(
        labeled_step__labeling=OuterRef("pk"), flagged=True
    ).values("labeled_step__labeling")
    return _labelings(review_filter).annotate(
        flags=Subquery(flags.annotate(n=Count("id")).values("n")[:1]),
        is_gold=Exists(LabelingTask.objects.filter(gold_labeling=OuterRef("pk"))),
    )


def labelings_with_reasons(review_filter: ReviewFilter) -> QuerySet[Labeling]:
    """Labelings that gave up or reported a bad problem, with what the labeler wrote."""
    return _labelings(review_filter).filter(finish_reason__in=UNFINISHED)


def flagged_steps(review_filter: ReviewFilter) -> QuerySet[LabeledCompletion]:
    """Every flagged (unsure) rating: the step or alternative, its rating, who and where."""
    return (
        LabeledCompletion.objects.filter(flagged=True)
        .filter(review_filter.labelings("labeled_step__labeling__"))
        .select_related(
            "labeled_step__labeling__labeler__user",
            "labeled_step__labeling__generation",
            "labeled_step__labeling__solution__problem",
        )
        .order_by("-labeled_step__labeling__timestamp", "labeled_step__position", "position")
    )


def disagreement_keys(review_filter: ReviewFilter) -> QuerySet:
    """(solution, step position) of every step whose own text got different ratings from the
    labelers who rated it, most raters first. Values: solution, step (its position), raters,
    lowest, highest.

    A filter on labeler keeps the steps that labeler rated, compared with everyone's ratings.
    """
    rated = LabeledCompletion.objects.filter(position=0, rating__isnull=False)
    if review_filter.labeler_id is not None:
        own = LabeledCompletion.objects.filter(
            position=0,
            rating__isnull=False,
            labeled_step__labeling__labeler_id=review_filter.labeler_id,
        ).values("labeled_step__labeling__solution_id")
        rated = rated.filter(labeled_step__labeling__solution_id__in=own)
    scope = ReviewFilter(
        generation=review_filter.generation, problem_id=review_filter.problem_id
    ).labelings("labeled_step__labeling__")
    return (
        rated.filter(scope)
        .values(solution=F("labeled_step__labeling__solution_id"), step=F("labeled_step__position"))
        .annotate(raters=Count("id"), lowest=Min("rating"), highest=Max("rating"))
        .filter(lowest__lt=F("highest"))
        .order_by("-raters", "-solution", "step")
    )


def disagreement_rows(keys: list[dict[str, Any]], review_filter: ReviewFilter) -> list[dict]:
    """The steps behind one page of disagreement keys: text, problem, and each labeler's rating
    (with the labeling to open). Three queries whatever the page's size."""
    if not keys:
        return []
    solutions = {k["solution"] for k in keys}
    wanted = {(k["solution"], k["step"]) for k in keys}
    scope = ReviewFilter(
        generation=review_filter.generation, problem_id=review_filter.problem_id
    ).labelings("labeled_step__labeling__")
    ratings: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for row in (
        LabeledCompletion.objects.filter(
            scope,
            position=0,
            rating__isnull=False,
            labeled_step__labeling__solution_id__in=solutions,
        )
        .values(
            "rating",
            "flagged",
            solution=F("labeled_step__labeling__solution_id"),
            step=F("labeled_step__position"),
            labeling=F("labeled_step__labeling_id"),
            labeler=F("labeled_step__labeling__labeler__user__username"),
            generation=F("labeled_step__labeling__generation__number"),
        )
        .order_by("rating", "labeler")
    ):
        key = (row["solution"], row["step"])
        if key in wanted:
            ratings[key].append(row)
    texts = {
        (s.solution_id, s.position): s.text
        for s in Step.objects.filter(solution_id__in=solutions).only(
            "solution_id", "position", "text"
        )
    }
    problems = {
        solution: {"id": pk, "text": text}
        for solution, pk, text in Problem.objects.filter(solutions__id__in=solutions).values_list(
            "solutions__id", "id", "text"
        )
    }
    return [
        {
            "solution": k["solution"],
            "problem": problems.get(k["solution"]),
            "position": k["step"],
            "text": texts.get((k["solution"], k["step"]), ""),
            "ratings": ratings[(k["solution"], k["step"])],
        }
        for k in keys
    ]


def labeler_scores() -> list[dict[str, Any]]:
    """Per labeler: screening status and score, QC agreement with gold, agreement with the
    other labelers (ordinal alpha vs the rest), labelings, give-ups, bad-problem reports, flags.
    Imported PRM800K labelers are included (they have labelings and agreement, no screening)."""
    report = agreement_report()
    qc = {row["labeler_id"]: row for row in report["qc"]}
    alpha = {row["labeler_id"]: row for row in report["labelers"]}
    work = {
        row["labeler_id"]: row
        for row in Labeling.objects.values("labeler_id").annotate(
            labelings=Count("id"),
            give_ups=Count("id", filter=Q(finish_reason=Labeling.FinishReason.GIVE_UP)),
            bad_problems=Count("id", filter=Q(finish_reason=Labeling.FinishReason.BAD_PROBLEM)),
        )
    }
    flags = dict(
        LabeledCompletion.objects.filter(flagged=True)
        .values_list("labeled_step__labeling__labeler_id")
        .annotate(n=Count("id"))
    )
    rows = []
    for labeler in Labeler.objects.select_related("user").order_by("user__username"):
        w = work.get(labeler.pk, {})
        q = qc.get(labeler.pk, {})
        a = alpha.get(labeler.pk, {})
        rows.append(
            {
                "id": labeler.pk,
                "name": labeler.user.get_username(),
                "role": labeler.role,
                "imported": labeler.external_id is not None,
                "screening_status": labeler.screening_status,
                "screening_agreement": labeler.screening_agreement,
                "qc_items": q.get("qc_items", 0),
                "qc_steps": q.get("steps_compared", 0),
                "qc_agreement": q.get("agreement"),
                "alpha_vs_rest": a.get("alpha_vs_rest"),
                "shared_steps": a.get("shared_steps", 0),
                "labelings": w.get("labelings", 0),
                "give_ups": w.get("give_ups", 0),
                "bad_problems": w.get("bad_problems", 0),
                "flags": flags.get(labeler.pk, 0),
            }
        )
    return rows


def alpha_by_round() -> list[dict[str, Any]]:
    """Krippendorff's ordinal alpha per round (labeling.agreement), for the review screen."""
    return agreement_report()["generations"]


def filter_choices() -> dict[str, list]:
    """The labelers and rounds the filter form offers (those with labelings)."""
    labelers = list(
        Labeler.objects.filter(labelings__isnull=False)
        .distinct()
        .order_by("user__username")
        .values_list("id", "user__username")
    )
    rounds = list(
        Generation.objects.filter(labelings__isnull=False)
        .distinct()
        .order_by("number")
        .values_list("number", flat=True)
    )
    return {"labelers": labelers, "rounds": rounds}


# ---------------------------------------------------------------- one labeling


def _signed(rating: int | None) -> str:
    return {1: "+1", 0: "0", -1: "−1"}.get(rating, "–")


def _kind(labeling: Labeling) -> str:
    if labeling.is_screening:
        return "screening"
    return "qc" if labeling.is_quality_control else "regular"


def labeling_detail(*, labeling_id: int) -> dict[str, Any]:
    """One labeling as its labeler saw it, and what a reviewer needs beside it.

    ``steps`` are the rows the labeler rated, in order: the step itself (completion 0) with its
    rating and flag, then any alternatives rated for it; ``unreached`` are the solution's steps
    after the last rated one (in phase 2 the workspace stops at the first Bad step, so the
    labeler never saw them). ``gold`` lists the solution's screening and QC items; ``others``
    the other labelings of the same solution. Raises Labeling.DoesNotExist.
    """
    labeling = Labeling.objects.select_related(
        "labeler__user", "generation", "solution__problem", "task"
    ).get(pk=labeling_id)
    solution = labeling.solution
    problem = solution.problem
    own_steps = {s.position: s.text for s in Step.objects.filter(solution=solution)}
    labeled = list(
        LabeledStep.objects.filter(labeling=labeling)
        .prefetch_related("completions")
        .order_by("position")
    )
    steps = []
    for step in labeled:
        completions = sorted(step.completions.all(), key=lambda c: c.position)
        steps.append(
            {
                "position": step.position,
                "text": completions[0].text if completions else own_steps.get(step.position, ""),
                "rating": completions[0].rating if completions else None,
                "flagged": bool(completions and completions[0].flagged),
                "chosen_completion": step.chosen_completion,
                "alternatives": [
                    {
                        "position": c.position,
                        "text": c.text,
                        "rating": c.rating,
                        "flagged": bool(c.flagged),
                    }
                    for c in completions[1:]
                ],
                "human_completion": (
                    {
                        "text": step.human_completion_text,
                        "rating": step.human_completion_rating,
                    }
                    if step.has_human_completion
                    else None
                ),
            }
        )
    last = max((s["position"] for s in steps), default=-1)
    unreached = [{"position": p, "text": text} for p, text in sorted(own_steps.items()) if p > last]
    gold = [
        {
            "task_id": t.pk,
            "kind": t.kind,
            "generation": t.generation.number,
            "gold_ratings": " ".join(_signed(r) for r in t.gold_ratings or []),
            "matches": t.gold_ratings == [s["rating"] for s in steps],
            "from_labeling": t.gold_labeling_id,
        }
        for t in LabelingTask.objects.filter(solution=solution)
        .exclude(kind=LabelingTask.Kind.REGULAR)
        .select_related("generation")
        .order_by("generation__number")
    ]
    others = [
        {
            "id": other.pk,
            "labeler": other.labeler.user.get_username(),
            "generation": other.generation.number if other.generation else None,
            "finish_reason": other.finish_reason,
        }
        for other in Labeling.objects.filter(solution=solution)
        .exclude(pk=labeling.pk)
        .select_related("labeler__user", "generation")
        .order_by("timestamp")
    ]
    ratings = [s["rating"] for s in steps]
    gold_blockers = []
    if not steps:
        gold_blockers.append("it rated no step")
    elif any(r is None for r in ratings):
        gold_blockers.append("some steps it reached have no rating")
    labeler = labeling.labeler
    return {
        "id": labeling.pk,
        "labeler": {
            "id": labeler.pk,
            "name": labeler.user.get_username(),
            "imported": labeler.external_id is not None,
            "screening_status": labeler.screening_status,
            "screening_agreement": labeler.screening_agreement,
        },
        "generation": labeling.generation.number if labeling.generation else None,
        "kind": _kind(labeling),
        "source": labeling.source,
        "finish_reason": labeling.finish_reason,
        "finish_reason_text": labeling.finish_reason_text,
        "total_time_ms": labeling.total_time_ms,
        "timestamp": labeling.timestamp,
        "problem": {
            "id": problem.pk,
            "text": problem.text,
            "reference_answer": labeling.ground_truth_answer_override or problem.reference_answer,
        },
        "solution": {
            "id": solution.pk,
            "grade": solution.grade,
            "final_answer": solution.final_answer,
            "num_steps": solution.num_steps,
        },
        "steps": steps,
        "unreached": unreached,
        "gold": gold,
        "gold_blockers": gold_blockers,
        "others": others,
        # QC items are served from rounds that still serve work.
        "rounds": list(
            Generation.objects.filter(number__gte=0, state__in=["active", "paused"])
            .order_by("-number")
            .values_list("id", "number")
        ),
    }
