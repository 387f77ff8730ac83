"""The labeling domain: problems, solutions and their steps, labeling tasks, labelings.

A PRM800K line maps onto these tables as follows:
- ``question.problem`` / ``ground_truth_*``      -> Problem
- ``question.pre_generated_*``                   -> Solution (``is_pre_generated``) and its Steps
- ``generation`` / QC / screening flags          -> Labeling (copied from its task when labeled here)
- ``label.steps[i]``                             -> LabeledStep
- ``label.steps[i].completions[j]``              -> LabeledCompletion
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.db.models.functions import MD5


class Labeler(models.Model):
    """A person who labels (or administers). One per Django user; imported PRM800K labelers
    get an inactive user named after their PRM800K id."""

    class Role(models.TextChoices):
        LABELER = "labeler"
        ADMIN = "admin"

    class ScreeningStatus(models.TextChoices):
        PENDING = "pending"
        PASSED = "passed"
        FAILED = "failed"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="labeler"
    )
    external_id = models.CharField(
        max_length=64, unique=True, null=True, blank=True, help_text="PRM800K labeler id."
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.LABELER)
    screening_status = models.CharField(
        max_length=16, choices=ScreeningStatus.choices, default=ScreeningStatus.PENDING
    )
    screening_agreement = models.FloatField(null=True, blank=True)
    # The id exports write in `labeler` for a labeler without a PRM800K id: random, kept, so the
    # same person has the same id in every export and no export carries a username.
    pseudonym = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(screening_agreement__isnull=True)
                | Q(screening_agreement__gte=0, screening_agreement__lte=1),
                name="labeler_screening_agreement_range",
            )
        ]

    def __str__(self) -> str:
        return self.external_id or self.user.get_username()

    @property
    def is_admin(self) -> bool:
        return self.role == self.Role.ADMIN or self.user.is_superuser

    @property
    def export_id(self) -> str:
        """What exports write in `labeler`: the PRM800K id of an imported labeler, else the
        pseudonym (never the username)."""
        return self.external_id or str(self.pseudonym)


class Problem(models.Model):
    text = models.TextField(help_text="Problem statement (LaTeX).")
    reference_solution = models.TextField(blank=True, default="")
    reference_answer = models.TextField()
    subject = models.CharField(max_length=64, blank=True, default="")
    level = models.PositiveSmallIntegerField(null=True, blank=True)
    source_id = models.CharField(
        max_length=255, null=True, blank=True, unique=True, help_text="e.g. MATH unique_id."
    )
    split = models.CharField(max_length=16, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # Problem texts are long: uniqueness on their hash keeps re-imports idempotent.
            models.UniqueConstraint(MD5("text"), name="problem_text_unique"),
        ]

    def __str__(self) -> str:
        return self.source_id or self.text[:60]


class Solution(models.Model):
    """A candidate solution: ordered steps, the final answer and its grade."""

    class Grade(models.TextChoices):
        CORRECT = "correct"
        WRONG = "wrong"
        UNGRADED = "ungraded"

    problem = models.ForeignKey(Problem, on_delete=models.CASCADE, related_name="solutions")
    final_answer = models.TextField(null=True, blank=True)
    grade = models.CharField(max_length=16, choices=Grade.choices, default=Grade.UNGRADED)
    generator = models.CharField(max_length=128, blank=True, default="")
    source = models.CharField(
        max_length=32, blank=True, default="", help_text="import, prm800k, synthetic, demo, ..."
    )
    is_pre_generated = models.BooleanField(
        default=True,
        help_text="False for PRM800K phase 1 trajectories, whose steps were chosen while labeling.",
    )
    # Score of the PRM that selected it, as shown in PRM800K `pre_generated_verifier_score`.
    selection_score = models.FloatField(null=True, blank=True)
    fingerprint = models.CharField(
        max_length=64,
        unique=True,
        help_text="sha256 of problem and steps: re-imports dedupe on it.",
    )
    num_steps = models.PositiveIntegerField(default=0)
    # Sampled solutions only (null for imports): how the sample was drawn (generator, model,
    # prompt sha256, temperature, top_p, max_new_tokens, seed, ...), and the sampling key
    # (generator + prompt + parameters + seed) with the sample's index, which make sampling the
    # same request again a no-op.
    generation_params = models.JSONField(null=True, blank=True)
    sampling_key = models.CharField(max_length=64, null=True, blank=True)
    sample_index = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["problem", "grade"])]
        constraints = [
            # One stored sample per (problem, sampling key, index); NULLs (imports) never clash.
            models.UniqueConstraint(
                fields=["problem", "sampling_key", "sample_index"],
                name="solution_sample_once",
            ),
        ]

    def __str__(self) -> str:
        return f"solution {self.pk} of problem {self.problem_id}"


class Step(models.Model):
    solution = models.ForeignKey(Solution, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField()
    text = models.TextField()

    class Meta:
        ordering = ["solution", "position"]
        constraints = [
            models.UniqueConstraint(fields=["solution", "position"], name="step_position_unique"),
        ]

    def __str__(self) -> str:
        return f"step {self.position} of solution {self.solution_id}"


class StepAlternative(models.Model):
    """An alternative completion offered for a step, rated after the first Bad step."""

    step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="alternatives")
    position = models.PositiveIntegerField(help_text="1-based: completion 0 is the step itself.")
    text = models.TextField()

    class Meta:
        ordering = ["step", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["step", "position"], name="alternative_position_unique"
            ),
            models.CheckConstraint(condition=Q(position__gte=1), name="alternative_position_gte_1"),
        ]


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
        # Created by active_learning before rounds moved here; the table keeps its name.
        db_table = "active_learning_generation"
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


class LabelingTask(models.Model):
    """A solution queued in a generation, with how many labelings it needs."""

    class Kind(models.TextChoices):
        REGULAR = "regular"
        QUALITY_CONTROL = "qc"
        SCREENING = "screening"

    class State(models.TextChoices):
        OPEN = "open"
        PAUSED = "paused"
        CANCELLED = "cancelled"
        DONE = "done"

    solution = models.ForeignKey(Solution, on_delete=models.CASCADE, related_name="tasks")
    generation = models.ForeignKey(Generation, on_delete=models.PROTECT, related_name="tasks")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.REGULAR)
    labelings_required = models.PositiveIntegerField(default=1)
    priority = models.IntegerField(default=0, help_text="Higher is served first.")
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN)
    # Gold rating per step (-1/0/1) for QC and screening items; never shown to labelers.
    gold_ratings = ArrayField(models.SmallIntegerField(), null=True, blank=True)
    # The expert labeling the gold was taken from (null: given as ratings, or imported).
    gold_labeling = models.ForeignKey(
        "Labeling", on_delete=models.SET_NULL, null=True, blank=True, related_name="gold_for"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["generation", "solution"], name="task_solution_once_per_generation"
            ),
            models.CheckConstraint(
                condition=Q(labelings_required__gte=1), name="task_labelings_required_gte_1"
            ),
            models.CheckConstraint(
                condition=Q(kind="regular") | Q(gold_ratings__isnull=False),
                name="task_gold_for_qc_and_screening",
            ),
        ]
        indexes = [models.Index(fields=["state", "kind", "-priority", "id"])]

    def __str__(self) -> str:
        return f"task {self.pk} ({self.kind}) gen {self.generation_id}"


class Labeling(models.Model):
    """One labeler's pass over one solution: one line of the PRM800K export."""

    class FinishReason(models.TextChoices):
        SOLUTION = "solution"
        FOUND_ERROR = "found_error"
        GIVE_UP = "give_up"
        BAD_PROBLEM = "bad_problem"

    class Source(models.TextChoices):
        WORKSPACE = "workspace"
        IMPORT = "import"
        SIMULATION = "simulation"

    solution = models.ForeignKey(Solution, on_delete=models.PROTECT, related_name="labelings")
    labeler = models.ForeignKey(Labeler, on_delete=models.PROTECT, related_name="labelings")
    task = models.ForeignKey(
        LabelingTask, on_delete=models.SET_NULL, null=True, blank=True, related_name="labelings"
    )
    generation = models.ForeignKey(
        Generation,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="labelings",
        help_text="Null for PRM800K phase 1.",
    )
    is_quality_control = models.BooleanField(default=False)
    is_screening = models.BooleanField(default=False)
    finish_reason = models.CharField(max_length=16, choices=FinishReason.choices)
    finish_reason_text = models.TextField(
        blank=True, default="", help_text="Why the labeler gave up or reported the problem."
    )
    total_time_ms = models.PositiveBigIntegerField(null=True, blank=True)
    timestamp = models.DateTimeField(help_text="When the labeling was finished.")
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.WORKSPACE)
    # An imported line whose `ground_truth_*` differs from the problem's stored reference keeps
    # its own text here, so the export reproduces the line exactly.
    ground_truth_answer_override = models.TextField(null=True, blank=True)
    ground_truth_solution_override = models.TextField(null=True, blank=True)
    # sha256 of the imported line's identity (labeler, timestamp, problem, steps): dedupes re-imports.
    import_key = models.CharField(max_length=64, unique=True, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # One labeler never labels the same solution twice within a generation.
            models.UniqueConstraint(
                fields=["labeler", "solution", "generation"],
                name="labeling_once_per_labeler_solution_generation",
                nulls_distinct=False,
            ),
            models.CheckConstraint(
                condition=~Q(is_quality_control=True, is_screening=True),
                name="labeling_not_both_qc_and_screening",
            ),
        ]
        indexes = [
            models.Index(fields=["generation", "timestamp"]),
            models.Index(fields=["labeler", "timestamp"]),
        ]

    def __str__(self) -> str:
        return f"labeling {self.pk} by {self.labeler_id} of solution {self.solution_id}"


class LabeledStep(models.Model):
    """``label.steps[i]`` of a PRM800K line."""

    labeling = models.ForeignKey(Labeling, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField()
    # PRM800K allows `completions: null` (a phase 1 give-up on the last step).
    completions_null = models.BooleanField(default=False)
    chosen_completion = models.IntegerField(null=True, blank=True)
    # `human_completion` is null or {text, rating, source, flagged}; kept as columns, not JSON,
    # so nothing is reordered.
    has_human_completion = models.BooleanField(default=False)
    human_completion_text = models.TextField(null=True, blank=True)
    human_completion_rating = models.SmallIntegerField(null=True, blank=True)
    human_completion_source = models.CharField(max_length=32, null=True, blank=True)
    human_completion_flagged = models.BooleanField(null=True, blank=True)

    class Meta:
        ordering = ["labeling", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["labeling", "position"], name="labeled_step_position_unique"
            ),
            models.CheckConstraint(
                condition=Q(human_completion_rating__isnull=True)
                | Q(human_completion_rating__in=[-1, 0, 1]),
                name="human_completion_rating_valid",
            ),
            models.CheckConstraint(
                condition=Q(chosen_completion__isnull=True) | Q(chosen_completion__gte=0),
                name="chosen_completion_gte_0",
            ),
        ]


class LabeledCompletion(models.Model):
    """``label.steps[i].completions[j]``: a rated completion (j = 0 is the solution's own step)."""

    labeled_step = models.ForeignKey(
        LabeledStep, on_delete=models.CASCADE, related_name="completions"
    )
    position = models.PositiveIntegerField()
    text = models.TextField()
    rating = models.SmallIntegerField(null=True, blank=True)
    flagged = models.BooleanField(null=True, blank=True)

    class Meta:
        ordering = ["labeled_step", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["labeled_step", "position"], name="labeled_completion_position_unique"
            ),
            models.CheckConstraint(
                condition=Q(rating__isnull=True) | Q(rating__in=[-1, 0, 1]),
                name="completion_rating_valid",
            ),
        ]


class Assignment(models.Model):
    """One labeler's lease on one labeling task, and later the record of its outcome.

    A regular task with N required labelings has slots 0..N-1; an active or submitted
    assignment holds one slot, so active leases plus finished labelings can never exceed N.
    QC and screening items go to every labeler once and hold no slot. See docs/task-leasing.md.
    Besides the constraints below, the migration adds two composite foreign keys that keep
    ``task_kind`` and ``slots`` equal to the task's ``kind`` and ``labelings_required``.
    """

    class State(models.TextChoices):
        ACTIVE = "active"
        SUBMITTED = "submitted"
        EXPIRED = "expired"
        WITHDRAWN = "withdrawn"

    task = models.ForeignKey(LabelingTask, on_delete=models.CASCADE, related_name="assignments")
    labeler = models.ForeignKey(Labeler, on_delete=models.CASCADE, related_name="assignments")
    # Copies of the task's kind and labelings_required (kept equal by composite foreign keys).
    task_kind = models.CharField(max_length=16, choices=LabelingTask.Kind.choices)
    slots = models.PositiveIntegerField()
    slot = models.PositiveIntegerField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    # A lease taken while the labeler still works on their current task, so the next task is in
    # the page before they submit. A real lease (holds its slot, expires, is swept); it becomes
    # the current lease when the current one is submitted or lost.
    prefetched = models.BooleanField(default=False)
    lease_expires_at = models.DateTimeField()
    draft_state = models.JSONField(null=True, blank=True)
    draft_active_ms = models.PositiveBigIntegerField(null=True, blank=True)
    draft_saved_at = models.DateTimeField(null=True, blank=True)
    labeling = models.OneToOneField(
        Labeling, on_delete=models.PROTECT, null=True, blank=True, related_name="assignment"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # Regular tasks: a slot, below the task's N while the assignment is live (expired
            # history must not block lowering N). QC/screening items: no slot.
            models.CheckConstraint(
                condition=(
                    (
                        Q(task_kind="regular", slot__isnull=False)
                        & (Q(slot__lt=models.F("slots")) | ~Q(state__in=["active", "submitted"]))
                    )
                    | (~Q(task_kind="regular") & Q(slot__isnull=True))
                ),
                name="assignment_slot_within_task",
            ),
            models.UniqueConstraint(
                fields=["task", "slot"],
                condition=Q(state__in=["active", "submitted"]),
                name="assignment_one_holder_per_slot",
            ),
            models.UniqueConstraint(
                fields=["task", "labeler"],
                condition=Q(state__in=["active", "submitted"]),
                name="assignment_task_once_per_labeler",
            ),
            models.UniqueConstraint(
                fields=["labeler"],
                condition=Q(state="active", prefetched=False),
                name="assignment_one_open_lease_per_labeler",
            ),
            # Besides the open lease, at most one prefetched lease (the next task).
            models.UniqueConstraint(
                fields=["labeler"],
                condition=Q(state="active", prefetched=True),
                name="assignment_one_prefetched_lease_per_labeler",
            ),
            models.CheckConstraint(
                condition=Q(prefetched=False) | ~Q(state="submitted"),
                name="assignment_submitted_not_prefetched",
            ),
            models.CheckConstraint(
                condition=Q(state="submitted", labeling__isnull=False)
                | (~Q(state="submitted") & Q(labeling__isnull=True)),
                name="assignment_labeling_iff_submitted",
            ),
        ]
        indexes = [
            models.Index(fields=["task", "state"]),
            models.Index(
                fields=["lease_expires_at"],
                condition=Q(state="active"),
                name="assignment_active_lease_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"assignment {self.pk} of task {self.task_id} to {self.labeler_id} ({self.state})"


class TrajectoryCandidates(models.Model):
    """Phase 1: the candidates sampled for the next step of a trajectory in progress.

    Keyed by the trajectory so far (``prefix_sha256`` of its step texts): the candidates shown for
    a position are stored once and served again on reload, never re-sampled. Sets sampled ahead
    for a choice the labeler did not make (prefetch) stay here unused.
    """

    assignment = models.ForeignKey(
        Assignment, on_delete=models.CASCADE, related_name="candidate_sets"
    )
    position = models.PositiveIntegerField(help_text="0-based index of the step they are for.")
    prefix_sha256 = models.CharField(max_length=64)
    # [{"text", "finish_reason", "completion_tokens", "ends_solution"}, ...] in seed order.
    candidates = models.JSONField()
    # generator, backend, seeds and sampling parameters that produced them.
    sampling = models.JSONField(default=dict)
    elapsed_ms = models.PositiveIntegerField(default=0)
    prefetched = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["assignment", "prefix_sha256"], name="trajectory_candidates_once"
            ),
        ]

    def __str__(self) -> str:
        return f"candidates for step {self.position} of assignment {self.assignment_id}"


class TrajectoryStep(models.Model):
    """Phase 1: one decided step of a trajectory in progress (part of the server-side draft).

    Every candidate rated, then one chosen (``chosen_completion``) or a step written
    (``human_text``). Becomes a ``LabeledStep`` with its ``LabeledCompletion``s on submit.
    """

    assignment = models.ForeignKey(
        Assignment, on_delete=models.CASCADE, related_name="trajectory_steps"
    )
    position = models.PositiveIntegerField()
    candidates = models.ForeignKey(
        TrajectoryCandidates, on_delete=models.PROTECT, related_name="decisions"
    )
    ratings = ArrayField(models.SmallIntegerField(null=True))
    flags = ArrayField(models.BooleanField())
    chosen_completion = models.PositiveIntegerField(null=True, blank=True)
    human_text = models.TextField(null=True, blank=True)
    human_flagged = models.BooleanField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["assignment", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["assignment", "position"], name="trajectory_step_position_unique"
            ),
            models.CheckConstraint(
                condition=Q(chosen_completion__isnull=True, human_text__isnull=False)
                | Q(chosen_completion__isnull=False, human_text__isnull=True),
                name="trajectory_step_chosen_xor_written",
            ),
        ]

    def __str__(self) -> str:
        return f"step {self.position} of assignment {self.assignment_id}"
