"""PRM versions: creation with a frozen data snapshot, the promotion rule, promotion, retirement."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from labeling.models import Solution
from training import datasets
from training.models import PRMVersion
from training.selectors import active_prm_version
from training.services.base_models import backbone_problem, base_model_path
from training.services.errors import ImproperlyConfiguredRule, PromotionRefused, TrainingError

logger = logging.getLogger(__name__)

# Hyperparameters a version may carry into TrainConfig.
TRAIN_KEYS = (
    "epochs",
    "learning_rate",
    "batch_tokens",
    "max_length",
    "seed",
    "bf16",
    "gradient_checkpointing",
    "device",
    "resume_every_steps",
    "backbone_layers",
    "train_layers",
    "frozen_cache_gb",
    "frozen_bf16",
)


def _is_dir(path: str) -> bool:
    try:
        return Path(path).is_dir()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        return False


def _version_errors(
    name: str, kind: str, base_model: str, hyperparameters: dict, heldout_fraction: float
) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if not name or len(name) > 128:
        errors["name"] = ["Give a name of 1 to 128 characters."]
    elif PRMVersion.objects.filter(name=name).exists():
        errors["name"] = [f"A version named {name!r} exists already."]
    if kind not in PRMVersion.Kind.values:
        errors["kind"] = [f"Kind must be one of {', '.join(PRMVersion.Kind.values)}."]
    if not base_model or not _is_dir(base_model):
        errors["base_model"] = [
            f"{base_model!r} is not a local model directory (nor a registered base model)."
        ]
    elif (Path(base_model) / "config.json").is_file() and (problem := backbone_problem(base_model)):
        errors["base_model"] = [problem]
    unknown = sorted(set(hyperparameters) - set(TRAIN_KEYS))
    if unknown:
        errors["hyperparameters"] = [f"Unknown keys: {', '.join(unknown)}."]
    if not 0.0 <= heldout_fraction < 1.0:
        errors["heldout_fraction"] = ["Give a share in [0, 1)."]
    return errors


@transaction.atomic
def prm_version_create(
    *,
    name: str,
    base_model: str,
    kind: str = PRMVersion.Kind.PRM,
    hyperparameters: dict[str, Any] | None = None,
    max_labeling_id: int | None = None,
    heldout_fraction: float | None = None,
) -> PRMVersion:
    """A version in state `training`, its data snapshot frozen now (retries train on the same data).

    The snapshot also fixes the held-out share (default STEPWISE_HELDOUT_FRACTION), so later
    evaluations of the version use the same split.
    """
    base_model = base_model_path(base_model) if base_model else base_model
    hyperparameters = dict(hyperparameters or {})
    if heldout_fraction is None:
        heldout_fraction = settings.STEPWISE_HELDOUT_FRACTION
    errors = _version_errors(name, kind, base_model, hyperparameters, heldout_fraction)
    if errors:
        raise ValidationError(errors)
    if max_labeling_id is None:
        max_labeling_id = datasets.current_max_labeling_id()
    snapshot: dict[str, Any] = {
        "max_labeling_id": max_labeling_id,
        "heldout_fraction": heldout_fraction,
    }
    if kind == PRMVersion.Kind.ORM:
        # Outcome models also learn from graded solutions nobody labeled (up to this id).
        snapshot["max_solution_id"] = Solution.objects.aggregate(m=Max("id"))["m"] or 0
    return PRMVersion.objects.create(
        name=name,
        kind=kind,
        base_model=str(Path(base_model).resolve()),
        hyperparameters=hyperparameters,
        data_snapshot=snapshot,
    )


def ready_version(prm_version_id: int) -> PRMVersion:
    """The version, if it has a finished checkpoint to score or evaluate with."""
    version = PRMVersion.objects.get(id=prm_version_id)
    if (
        version.state
        not in (
            PRMVersion.State.READY,
            PRMVersion.State.ACTIVE,
            PRMVersion.State.RETIRED,
        )
        or not version.checkpoint_path
    ):
        raise TrainingError(f"{version.name} is {version.state}: it has no finished checkpoint")
    return version


# --------------------------------------------------------------------------- promotion


def promotion_rule(kind: str) -> dict[str, Any]:
    rules = settings.STEPWISE_PROMOTION_RULE
    rule = rules.get(kind, rules) if isinstance(rules, dict) else {}
    if "metric" not in rule:
        raise ImproperlyConfiguredRule(f"STEPWISE_PROMOTION_RULE has no metric for {kind!r}")
    return {"metric": rule["metric"], "tolerance": float(rule.get("tolerance", 0.0))}


def promotion_check(candidate: PRMVersion, active: PRMVersion | None) -> tuple[bool, str]:
    """Does `candidate` pass the rule against `active`? Pure; returns (ok, reason)."""
    if active is None:
        return True, "no active version"
    rule = promotion_rule(candidate.kind)
    metric, tolerance = rule["metric"], rule["tolerance"]
    new = (candidate.metrics or {}).get(metric)
    if new is None:
        return False, f"candidate has no held-out {metric}"
    # The candidate's training also scored the active version on the same held-out data;
    # prefer that number to the active version's own (measured on an older held-out set).
    baseline = (candidate.metrics or {}).get("baseline") or {}
    if baseline.get("prm_version_id") == active.id and baseline.get(metric) is not None:
        old, where = baseline[metric], "on the candidate's held-out set"
    else:
        old, where = (active.metrics or {}).get(metric), "as stored"
    if old is None:
        return True, f"active version has no {metric}"
    if new + tolerance >= old:
        return True, f"{metric} {new:.4f} >= {old:.4f} - {tolerance} ({where})"
    return False, f"{metric} {new:.4f} < {old:.4f} - {tolerance} ({where}): would regress"


def heldout_size(version: PRMVersion) -> dict[str, int]:
    """How many held-out solutions and rated held-out steps the version's metrics stand on."""
    metrics, snapshot = version.metrics or {}, version.data_snapshot or {}
    solutions = metrics.get("heldout_solutions", snapshot.get("heldout_solutions"))
    steps = metrics.get("n_steps")
    return {"solutions": int(solutions or 0), "steps": int(steps or 0)}


def heldout_size_check(version: PRMVersion) -> tuple[bool, str]:
    """Is the held-out set big enough for its metrics to mean anything? Pure; (ok, reason).

    Thresholds: STEPWISE_PROMOTION_MIN_HELDOUT_SOLUTIONS and, for PRMs (whose metric is per
    step), STEPWISE_PROMOTION_MIN_HELDOUT_STEPS.
    """
    size = heldout_size(version)
    need_solutions = settings.STEPWISE_PROMOTION_MIN_HELDOUT_SOLUTIONS
    need_steps = (
        settings.STEPWISE_PROMOTION_MIN_HELDOUT_STEPS if version.kind == PRMVersion.Kind.PRM else 0
    )
    measured = f"{size['solutions']} held-out solutions and {size['steps']} rated steps"
    if size["solutions"] >= need_solutions and size["steps"] >= need_steps:
        return True, f"measured on {measured}"
    return False, (
        f"its metrics were measured on {measured}, too few to mean anything; promotion needs at "
        f"least {need_solutions} solutions and {need_steps} steps "
        "(STEPWISE_PROMOTION_MIN_HELDOUT_SOLUTIONS / _STEPS)"
    )


@transaction.atomic
def prm_version_promote(*, prm_version_id: int, force: bool = False) -> PRMVersion:
    """Make the version active if its held-out set is big enough and its metrics do not regress;
    the old one is retired. ``force`` overrides both checks (the reasons are recorded).

    Locks every version of the kind, so two promotions run one after the other; the
    one-active-per-kind constraint backs it up.
    """
    candidate = PRMVersion.objects.select_for_update().get(id=prm_version_id)
    list(PRMVersion.objects.select_for_update().filter(kind=candidate.kind).values_list("id"))
    if candidate.state == PRMVersion.State.ACTIVE:
        return candidate
    if candidate.state not in (PRMVersion.State.READY, PRMVersion.State.RETIRED):
        raise PromotionRefused(f"{candidate.name} is {candidate.state}, not ready")
    sized, size_reason = heldout_size_check(candidate)
    if not sized and not force:
        raise PromotionRefused(f"{candidate.name} stays {candidate.state}: {size_reason}")
    active = active_prm_version(candidate.kind)
    ok, reason = promotion_check(candidate, active)
    if not ok and not force:
        raise PromotionRefused(f"{candidate.name} stays {candidate.state}: {reason}")
    if not sized:
        reason = f"{reason}; {size_reason}"
    now = timezone.now()
    if active is not None:
        active.state, active.retired_at = PRMVersion.State.RETIRED, now
        active.save(update_fields=["state", "retired_at"])
    candidate.state, candidate.activated_at = PRMVersion.State.ACTIVE, now
    candidate.metrics = {**candidate.metrics, "promotion": {"reason": reason, "forced": force}}
    candidate.save(update_fields=["state", "activated_at", "metrics"])
    logger.info("promoted %s: %s", candidate.name, reason)
    return candidate


@transaction.atomic
def prm_version_retire(*, prm_version_id: int) -> PRMVersion:
    version = PRMVersion.objects.select_for_update().get(id=prm_version_id)
    if version.state not in (PRMVersion.State.READY, PRMVersion.State.ACTIVE):
        raise TrainingError(f"{version.name} is {version.state}: only ready or active retire")
    version.state, version.retired_at = PRMVersion.State.RETIRED, timezone.now()
    version.save(update_fields=["state", "retired_at"])
    return version


def version_data(version: PRMVersion) -> datasets.TrainingData:
    """The version's frozen snapshot: same labels, same held-out split, every time."""
    snapshot = version.data_snapshot or {}
    fraction = snapshot.get("heldout_fraction")
    return datasets.build_training_data(
        max_labeling_id=snapshot.get("max_labeling_id"),
        heldout_fraction=settings.STEPWISE_HELDOUT_FRACTION if fraction is None else fraction,
        graded_up_to=snapshot.get("max_solution_id"),
    )
