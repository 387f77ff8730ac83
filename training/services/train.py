"""The training job of a `train` run: data from the version's snapshot, the library's training,
held-out metrics (and the active version's on the same split), the checkpoint moved into place.

The checkpoint is renamed into the version's directory while this attempt holds the run row and
still owns it, so a superseded attempt can never replace the files of the one that won.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from config.jobs import Reporter
from training import datasets
from training.models import PRMVersion, TrainingRun
from training.selectors import active_prm_version
from training.services.errors import TrainingError, json_safe, jsonable
from training.services.evaluation import heldout_metrics
from training.services.runs import checkpoint_dir_for, lock_owned, resume_dir, staging_dir
from training.services.versions import TRAIN_KEYS, version_data


def _train_config(run: TrainingRun, version: PRMVersion):
    from training.prm.config import TrainConfig

    # Leftovers of earlier, lost attempts: nothing in them is trusted, except the resume state,
    # which the library continues only when it was written for this same config and data.
    staging = staging_dir(run)
    for attempt in range(1, run.attempts):
        shutil.rmtree(staging.with_name(f"run{run.id}-a{attempt}"), ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    # The version's own choices over the platform's defaults (STEPWISE_TRAIN_DEFAULTS).
    hyper = {
        k: v
        for k, v in {**settings.STEPWISE_TRAIN_DEFAULTS, **(version.hyperparameters or {})}.items()
        if k in TRAIN_KEYS
    }
    return TrainConfig(
        base_model=version.base_model,
        output_dir=str(staging),
        objective=version.kind,
        resume_dir=str(resume_dir(run)),
        **hyper,
    )


def _metrics(
    version: PRMVersion, result, data: datasets.TrainingData, reporter: Reporter
) -> dict[str, Any]:
    """Training metrics, held-out metrics, and the active version's on the same held-out split."""
    metrics = {f"train_{k}": v for k, v in (result.metrics or {}).items() if jsonable(v)}
    metrics.update(
        heldout_metrics(result.checkpoint_dir, data, progress=reporter.scaled(0.85, 0.93))
    )
    active = active_prm_version(version.kind)
    if active is not None and active.checkpoint_path and Path(active.checkpoint_path).is_dir():
        reporter(0.93, f"scoring the held-out split with active {active.name}", force=True)
        try:
            baseline = heldout_metrics(active.checkpoint_path, data)
            metrics["baseline"] = {"prm_version_id": active.id, **baseline}
        except Exception as exc:  # noqa: BLE001 - a broken old model must not fail a new one
            reporter(0.95, f"baseline not measured, {active.name} did not load: {exc}")
    return metrics


def _store_checkpoint(run: TrainingRun, checkpoint_dir: str, metrics: dict) -> Path:
    """Move the finished checkpoint into the version's directory and mark the version ready."""
    final = checkpoint_dir_for(run.prm_version)
    with transaction.atomic():
        lock_owned(run.id, run.attempts)
        version = PRMVersion.objects.select_for_update().get(id=run.prm_version_id)
        if final.exists():
            shutil.rmtree(final)  # an earlier attempt got this far but never recorded it
        os.replace(checkpoint_dir, final)
        version.checkpoint_path = str(final)
        version.metrics = json_safe(metrics)
        version.state = PRMVersion.State.READY
        version.save(update_fields=["checkpoint_path", "metrics", "state"])
    shutil.rmtree(staging_dir(run), ignore_errors=True)
    shutil.rmtree(resume_dir(run), ignore_errors=True)
    return final


def train_job(run: TrainingRun, reporter: Reporter) -> dict[str, Any]:
    """Train the run's version; returns the run's result (checkpoint path and metrics)."""
    from training.prm.train import train_reward_model

    version = run.prm_version
    if version.state != PRMVersion.State.TRAINING and version.checkpoint_path:
        # An earlier attempt recorded the checkpoint and died before closing the run.
        return {"checkpoint_path": version.checkpoint_path, "note": "trained by an earlier attempt"}
    snapshot_max = (version.data_snapshot or {}).get("max_labeling_id")
    reporter(0.0, f"building data up to labeling {snapshot_max}", force=True)
    data = version_data(version)
    if not data.train:
        raise TrainingError(f"no training data in the snapshot ({data.snapshot})")
    PRMVersion.objects.filter(id=version.id).update(data_snapshot=data.snapshot)
    reporter(0.05, f"{len(data.train)} training and {len(data.heldout)} held-out examples")
    result = train_reward_model(
        data.train,
        _train_config(run, version),
        validation=data.heldout or None,
        progress=reporter.scaled(0.05, 0.85),
    )
    reporter(0.85, "evaluating on the held-out split", force=True)
    metrics = _metrics(version, result, data, reporter)
    final = _store_checkpoint(run, result.checkpoint_dir, metrics)
    return {"checkpoint_path": str(final), "metrics": json_safe(metrics)}
