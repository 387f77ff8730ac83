"""Reads for the training app."""

from __future__ import annotations

from django.db.models import QuerySet

from labeling.models import Labeling, Solution
from training.models import BaseModel, PRMVersion, SolutionScore, TrainingRun


def base_model_list() -> list[BaseModel]:
    """Registered backbones by name; each one's `found` says whether it is on this disk now."""
    return list(BaseModel.objects.order_by("name", "id"))


def active_prm_version(kind: str = PRMVersion.Kind.PRM) -> PRMVersion | None:
    """The version that scores and selects now (at most one per kind, by constraint)."""
    return PRMVersion.objects.filter(kind=kind, state=PRMVersion.State.ACTIVE).first()


def prm_version_get(*, name: str) -> PRMVersion:
    return PRMVersion.objects.get(name=name)


def prm_version_list() -> QuerySet[PRMVersion]:
    return PRMVersion.objects.order_by("-created_at", "-id")


def training_run_list(*, prm_version_id: int | None = None) -> QuerySet[TrainingRun]:
    runs = TrainingRun.objects.select_related("prm_version").order_by("-created_at", "-id")
    if prm_version_id is not None:
        runs = runs.filter(prm_version_id=prm_version_id)
    return runs


def labelings_since(version: PRMVersion | None) -> int:
    """Labelings newer than the version's training snapshot (all of them without a version)."""
    max_id = (version.data_snapshot or {}).get("max_labeling_id", 0) if version else 0
    return Labeling.objects.filter(id__gt=max_id).count()


def pool_solution_ids() -> list[int]:
    """Candidate solutions nobody has labeled or queued yet: what a round selects from."""
    return list(
        Solution.objects.filter(labelings__isnull=True, tasks__isnull=True)
        .order_by("id")
        .values_list("id", flat=True)
    )


def solution_scores(*, prm_version_id: int) -> QuerySet[SolutionScore]:
    return SolutionScore.objects.filter(prm_version_id=prm_version_id).order_by("-score", "id")
