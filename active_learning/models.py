"""Selections: the solutions a round's strategy chose (rounds themselves live in labeling)."""

from __future__ import annotations

from django.db import models


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

    generation = models.ForeignKey(
        "labeling.Generation", on_delete=models.CASCADE, related_name="selections"
    )
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
