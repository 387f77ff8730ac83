"""PRM versions, training runs and scores."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db import models
from django.db.models import Q


class BaseModel(models.Model):
    """A pretrained backbone on local disk that PRMs (and generators) start from.

    The row names a directory; the files may come and go (a fresh machine, a deleted volume), so
    `found` is checked on every read rather than stored.
    """

    class Kind(models.TextChoices):
        CAUSAL_LM = "causal_lm", "causal LM"

    name = models.CharField(max_length=128, unique=True)
    path = models.CharField(max_length=1024, help_text="Local directory of a Hugging Face model.")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.CAUSAL_LM)
    parameter_count = models.BigIntegerField(null=True, blank=True)
    notes = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name

    @property
    def found(self) -> bool:
        """Is the model on this machine's disk (a directory with its config.json)?"""
        return bool(self.path) and (Path(self.path) / "config.json").is_file()


class PRMVersion(models.Model):
    """A trained reward model: process (PRM) or outcome (ORM) supervised."""

    class Kind(models.TextChoices):
        PRM = "prm"
        ORM = "orm"

    class State(models.TextChoices):
        TRAINING = "training"
        READY = "ready"
        ACTIVE = "active"
        RETIRED = "retired"
        FAILED = "failed"

    name = models.CharField(max_length=128, unique=True)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.PRM)
    base_model = models.CharField(max_length=512, help_text="Local path of the backbone.")
    state = models.CharField(max_length=16, choices=State.choices, default=State.TRAINING)
    hyperparameters = models.JSONField(default=dict, blank=True)
    data_snapshot = models.JSONField(
        default=dict,
        blank=True,
        help_text="Which labels trained it (ids, counts, max labeling id).",
    )
    metrics = models.JSONField(default=dict, blank=True)
    checkpoint_path = models.CharField(max_length=1024, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # At most one active model of each kind.
            models.UniqueConstraint(
                fields=["kind"], condition=Q(state="active"), name="one_active_version_per_kind"
            ),
            # An active or ready version always points at a finished checkpoint.
            models.CheckConstraint(
                condition=~Q(state__in=["ready", "active"]) | ~Q(checkpoint_path=""),
                name="ready_version_has_checkpoint",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.name} ({self.state})"


class TrainingRun(models.Model):
    class Kind(models.TextChoices):
        TRAIN = "train"
        EVALUATE = "evaluate"
        SCORE = "score"

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    prm_version = models.ForeignKey(PRMVersion, on_delete=models.CASCADE, related_name="runs")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.TRAIN)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    progress = models.FloatField(default=0.0)
    log = models.TextField(blank=True, default="")
    error = models.TextField(blank=True, default="")
    celery_task_id = models.CharField(max_length=64, blank=True, default="")
    params = models.JSONField(default=dict, blank=True)
    # How many times a worker picked the run up; a redelivery after a lost worker adds one.
    attempts = models.PositiveIntegerField(default=0)
    # "host:pid" of the process working on it, so a redelivery can tell a lost attempt
    # (process gone) from a duplicate delivery while the first attempt still runs.
    worker = models.CharField(max_length=255, blank=True, default="")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(progress__gte=0, progress__lte=1), name="training_run_progress_range"
            ),
            # One training of a version at a time: a second launch or a duplicate cannot start.
            models.UniqueConstraint(
                fields=["prm_version"],
                condition=Q(kind="train", state__in=["queued", "running"]),
                name="one_unfinished_training_per_version",
            ),
        ]
        indexes = [models.Index(fields=["state", "heartbeat_at"])]

    def __str__(self) -> str:
        return f"{self.kind} run {self.pk} of {self.prm_version_id} ({self.state})"


class SolutionScore(models.Model):
    """(PRM version, solution) -> per-step probabilities and the solution score."""

    prm_version = models.ForeignKey(PRMVersion, on_delete=models.CASCADE, related_name="scores")
    solution = models.ForeignKey(
        "labeling.Solution", on_delete=models.CASCADE, related_name="scores"
    )
    score = models.FloatField()
    # [[p_negative, p_neutral, p_positive], ...] one triple per step.
    step_probabilities = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["prm_version", "solution"], name="score_once_per_version_solution"
            ),
        ]
        indexes = [models.Index(fields=["prm_version", "-score"])]


class SamplingRun(models.Model):
    """Sampling a candidate pool from a generator: the request, its progress and what came of it.

    The request (problems, samples per problem, generator, prompt, sampling parameters, seed) is
    frozen at creation in `params`; `request_key` identifies it, so an identical request finds this
    run instead of sampling again. Problems are done in order; `cursor` counts those whose samples
    are stored, and moves in the same transaction as the stored solutions, so a retried run goes on
    where the lost attempt stopped.
    """

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    generator = models.CharField(max_length=128)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    progress = models.FloatField(default=0.0)
    log = models.TextField(blank=True, default="")
    error = models.TextField(blank=True, default="")
    celery_task_id = models.CharField(max_length=64, blank=True, default="")
    params = models.JSONField(default=dict, blank=True)
    request_key = models.CharField(max_length=64, help_text="sha256 of the frozen request.")
    cursor = models.PositiveIntegerField(default=0, help_text="Problems whose samples are stored.")
    # requested = kept + duplicates + no_answer + empty + already_sampled;
    # kept = correct + wrong + ungraded; truncated: drawn samples cut at max_new_tokens.
    counts = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=255, blank=True, default="")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(progress__gte=0, progress__lte=1), name="sampling_run_progress_range"
            ),
            # An identical request is never sampled twice at once, nor again once it succeeded.
            models.UniqueConstraint(
                fields=["request_key"],
                condition=Q(state__in=["queued", "running", "succeeded"]),
                name="one_live_sampling_run_per_request",
            ),
        ]
        indexes = [models.Index(fields=["state", "heartbeat_at"])]

    def __str__(self) -> str:
        return f"sampling run {self.pk} ({self.generator}, {self.state})"
