"""Generations (active-learning rounds)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Generation(models.Model):
    """A round of labeling. Number -1 holds screening questions; 0, 1, ... are rounds."""

    class State(models.TextChoices):
        DRAFT = "draft"
        LAUNCHING = "launching"
        ACTIVE = "active"
        PAUSED = "paused"
        CANCELLED = "cancelled"
        FINISHED = "finished"
        FAILED = "failed"

    number = models.IntegerField(unique=True)
    strategy = models.CharField(max_length=32, blank=True, default="")
    strategy_params = models.JSONField(default=dict, blank=True)
    prm_version = models.ForeignKey(
        "training.PRMVersion",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="generations",
        help_text="The PRM that selected this generation's solutions; null for uniform or imports.",
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    labelings_per_task = models.PositiveIntegerField(default=1)
    qc_rate = models.FloatField(default=0.0, help_text="Share of served tasks that are QC items.")
    target_size = models.PositiveIntegerField(null=True, blank=True)
    retrain = models.BooleanField(
        default=False, help_text="Train a new PRM on all labels before scoring the pool."
    )
    # {"stage": ..., "fraction": 0..1, "message": ..., "selected": n, "error": ...}
    progress = models.JSONField(default=dict, blank=True)
    launched_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["number"]
        constraints = [
            models.CheckConstraint(
                condition=Q(number__gte=-1), name="generation_number_gte_minus_1"
            ),
            models.CheckConstraint(
                condition=Q(qc_rate__gte=0, qc_rate__lte=1), name="generation_qc_rate_range"
            ),
            models.CheckConstraint(
                condition=Q(labelings_per_task__gte=1), name="generation_labelings_per_task_gte_1"
            ),
            # Rounds launch one at a time: two concurrent selections would share candidates.
            models.UniqueConstraint(
                fields=["state"], condition=Q(state="launching"), name="one_launching_generation"
            ),
        ]

    def __str__(self) -> str:
        return f"generation {self.number}"


class Selection(models.Model):
    """One solution chosen for a generation, with the PRM score and the key that chose it.

    ``score`` is the selecting PRM's solution score (copied to ``Solution.selection_score``,
    exported as ``pre_generated_verifier_score``); ``key`` is the strategy's ranking value when it
    is not the score (the uncertainty margin), and ``rank`` the 0-based position in the batch.
    """

    class Reason(models.TextChoices):
        WRONG_ANSWER = "wrong_answer"
        REST = "rest"
        UNIFORM = "uniform"
        UNCERTAINTY = "uncertainty"

    generation = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="selections")
    solution = models.ForeignKey(
        "labeling.Solution", on_delete=models.CASCADE, related_name="selections"
    )
    task = models.OneToOneField(
        "labeling.LabelingTask",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="selection",
    )
    rank = models.PositiveIntegerField()
    reason = models.CharField(max_length=16, choices=Reason.choices)
    score = models.FloatField(null=True, blank=True)
    key = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["generation", "rank"]
        constraints = [
            models.UniqueConstraint(
                fields=["generation", "solution"], name="selection_solution_once_per_generation"
            ),
            models.UniqueConstraint(
                fields=["generation", "rank"], name="selection_rank_once_per_generation"
            ),
        ]

    def __str__(self) -> str:
        return f"selection {self.rank} of generation {self.generation_id}"
