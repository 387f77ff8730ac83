"""Retraining: a new version when enough labels arrived since the active one (or on schedule)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from training.models import PRMVersion
from training.selectors import active_prm_version, labelings_since
from training.services.runs import training_run_start
from training.services.versions import prm_version_create

logger = logging.getLogger(__name__)


def _template(kind: str) -> PRMVersion | None:
    """The version a retrain copies: the active one, else the newest ready one (locked)."""
    # One check at a time: the lock on the newest versions serializes concurrent beats.
    return (
        PRMVersion.objects.select_for_update()
        .filter(kind=kind)
        .filter(Q(state=PRMVersion.State.ACTIVE) | Q(state=PRMVersion.State.READY))
        .order_by(
            # active first, then newest
            F("activated_at").desc(nulls_last=True),
            "-id",
        )
        .first()
    )


def retrain_if_needed(
    *,
    force: bool = False,
    kind: str = PRMVersion.Kind.PRM,
    min_new_labels: int | None = None,
) -> PRMVersion | None:
    """Start a new version when enough labels arrived since the active one (or when forced).

    The new version copies the active (else newest ready) version's base model and
    hyperparameters and is promoted on success only if the promotion rule allows it.
    """
    with transaction.atomic():
        template = _template(kind)
        if template is None:
            logger.info("retrain: no %s version to start from", kind)
            return None
        if PRMVersion.objects.filter(kind=kind, state=PRMVersion.State.TRAINING).exists():
            logger.info("retrain: a %s version is training already", kind)
            return None
        new_labels = labelings_since(active_prm_version(kind) or template)
        minimum = (
            settings.STEPWISE_RETRAIN_MIN_NEW_LABELS if min_new_labels is None else min_new_labels
        )
        if not force and (minimum <= 0 or new_labels < minimum):
            return None
        version = prm_version_create(
            name=f"{kind}-auto-{timezone.now():%Y%m%d-%H%M%S}-{template.id}",
            base_model=template.base_model,
            kind=kind,
            hyperparameters=template.hyperparameters,
        )
        training_run_start(prm_version_id=version.id, activate=True)
        logger.info("retrain: %s started after %s new labelings", version.name, new_labels)
        return version
