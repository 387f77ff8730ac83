"""The sweep that keeps a round's launch moving when its pipeline stopped (beat, every minute).

A launching round moves only when a worker runs its next step (score, then select). The message
for that step can be lost: the broker was down when it was sent (the web's launch, or the worker
passing from scoring to selection), or Redis restarted without it. Then nothing is queued, the
round stays ``launching`` and every new launch answers 409. The sweep finds such rounds:

- a round whose step has a live worker (``round_pipeline_alive``: a fresh heartbeat, or a live
  process on this host) is left alone, and so is one whose selection holds the round's lock;
- one that no worker has touched for ``STEPWISE_ROUND_REDRIVE_SECONDS`` gets its next step sent
  again, at most once per that interval (steps are idempotent, so a duplicate costs nothing),
  recorded in ``progress`` (``redrives``, ``redriven_at``, a message);
- one that no worker has touched for ``STEPWISE_ROUND_STALL_SECONDS`` fails with the reason in
  ``progress.error`` (the console shows it), unless a training or sampling run is busy on the GPU
  worker, which scoring queues behind.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from active_learning import services
from labeling.models import Generation
from training.models import SamplingRun, TrainingRun

logger = logging.getLogger(__name__)

SCORE, SELECT = "score", "select"


def round_next_step(generation: Generation) -> str | None:
    """The step a launching round waits for: scoring (when it has a PRM or retrains and is not
    scored yet), else selection; None once it left ``launching``."""
    if generation.state != Generation.State.LAUNCHING:
        return None
    progress = generation.progress or {}
    needs_scores = generation.retrain or generation.prm_version_id is not None
    return SCORE if needs_scores and not progress.get("scored") else SELECT


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _gpu_busy() -> bool:
    running = TrainingRun.State.RUNNING
    return (
        TrainingRun.objects.filter(state=running).exists()
        or SamplingRun.objects.filter(state=running).exists()
    )


def rounds_sweep_stalled(
    *, send: Callable[[int, str], bool], now: datetime | None = None
) -> dict[str, int]:
    """Re-send the next step of launching rounds nobody works on; fail those stalled too long.

    ``send(generation_id, step)`` publishes a step (``active_learning.tasks.send_step``) and
    says whether the broker took it. Returns counts {"resent": n, "failed": m}.
    """
    now = now or timezone.now()
    redrive = timedelta(seconds=settings.STEPWISE_ROUND_REDRIVE_SECONDS)
    give_up = timedelta(seconds=settings.STEPWISE_ROUND_STALL_SECONDS)
    counts = {"resent": 0, "failed": 0}
    launching = Generation.objects.filter(state=Generation.State.LAUNCHING)
    for generation_id in launching.values_list("id", flat=True):
        with transaction.atomic():
            # A selection in progress holds this lock for its whole transaction: skip it.
            generation = (
                Generation.objects.select_for_update(skip_locked=True)
                .filter(id=generation_id)
                .first()
            )
            if generation is None:
                continue
            step = round_next_step(generation)
            if step is None or services.round_pipeline_alive(generation, now=now):
                continue
            progress = generation.progress or {}
            touched = _when(progress.get("heartbeat_at")) or generation.created_at
            quiet = now - touched
            if quiet >= give_up and not (step == SCORE and _gpu_busy()):
                counts["failed"] += 1
                reason = (
                    f"The launch stopped: no worker ran its {step} step for "
                    f"{int(quiet.total_seconds())} s (last heard from "
                    f"{progress.get('worker') or 'no worker'} at {touched:%Y-%m-%d %H:%M:%S} UTC; "
                    f"sent again {progress.get('redrives', 0)} times). Launch it again."
                )
                services.round_fail(generation_id=generation.id, error=reason)
                logger.warning("round %s failed by the sweep: %s", generation.number, reason)
                continue
            last_sent = _when(progress.get("redriven_at"))
            if quiet < redrive or (last_sent is not None and now - last_sent < redrive):
                continue
            redrives = int(progress.get("redrives", 0)) + 1
            # Written without a heartbeat: re-sending is not progress, the give-up clock runs on.
            generation.progress = {
                **progress,
                "redrives": redrives,
                "redriven_at": now.isoformat(),
                "message": (
                    f"no worker on the {step} step for {int(quiet.total_seconds())} s: "
                    f"sent again ({redrives})"
                ),
            }
            generation.save(update_fields=["progress"])
            transaction.on_commit(functools.partial(send, generation.id, step))
            counts["resent"] += 1
            logger.warning(
                "round %s: no worker on its %s step for %s; sent again",
                generation.number,
                step,
                quiet,
            )
    return counts
