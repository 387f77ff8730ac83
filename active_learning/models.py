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
        ]

    def __str__(self) -> str:
        return f"generation {self.number}"
