"""Writes for the training app, by part:

- `base_models`: registered backbones;
- `versions`: PRM versions, their frozen data snapshot, the promotion rule, promotion, retirement;
- `runs`: training, evaluation and scoring runs (start, claim, reporter, stale-run sweep), bound
  to the shared job runner `config.jobs`;
- `execute`: doing a run (claim, job under a heartbeat, close or fail, fenced);
- `train`, `evaluation`, `scoring`: the three jobs;
- `retraining`: a new version when enough labels arrived.

Short writes are `@transaction.atomic`. Long jobs (train, evaluate, score) are not one
transaction: they claim their run row, work for minutes or hours while reporting progress and a
heartbeat in small transactions, and finish in one last transaction. See docs/training.md for
how a lost worker is detected and why a half-written checkpoint can never become active.

The names below are re-exported so `from training import services` keeps working.
"""

from __future__ import annotations

from config.jobs import AttemptSuperseded, worker_identity
from training.services.base_models import base_model_path, base_model_register
from training.services.errors import (
    ImproperlyConfiguredRule,
    PromotionRefused,
    TrainingError,
    json_safe,
)
from training.services.evaluation import evaluate_prm_version, heldout_metrics
from training.services.execute import train_prm_version, training_run_execute
from training.services.retraining import retrain_if_needed
from training.services.runs import (
    RunReporter,
    checkpoint_dir_for,
    evaluation_run_start,
    lock_owned,
    scoring_run_start,
    training_run_claim,
    training_run_start,
    training_runs_publish_unpublished,
    training_runs_sweep_stale,
)
from training.services.scoring import SCORE_BATCH, score_solutions
from training.services.versions import (
    TRAIN_KEYS,
    heldout_size,
    heldout_size_check,
    prm_version_create,
    prm_version_promote,
    prm_version_retire,
    promotion_check,
    promotion_rule,
    ready_version,
    version_data,
)

__all__ = [
    "SCORE_BATCH",
    "TRAIN_KEYS",
    "AttemptSuperseded",
    "ImproperlyConfiguredRule",
    "PromotionRefused",
    "RunReporter",
    "TrainingError",
    "base_model_path",
    "base_model_register",
    "checkpoint_dir_for",
    "evaluate_prm_version",
    "evaluation_run_start",
    "heldout_metrics",
    "heldout_size",
    "heldout_size_check",
    "json_safe",
    "lock_owned",
    "prm_version_create",
    "prm_version_promote",
    "prm_version_retire",
    "promotion_check",
    "promotion_rule",
    "ready_version",
    "retrain_if_needed",
    "score_solutions",
    "scoring_run_start",
    "train_prm_version",
    "training_run_claim",
    "training_run_execute",
    "training_run_start",
    "training_runs_publish_unpublished",
    "training_runs_sweep_stale",
    "version_data",
    "worker_identity",
]
