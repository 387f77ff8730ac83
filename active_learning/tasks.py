"""Celery tasks of a round's launch. They take a generation id and call a service.

``active_learning.score_round`` matches the ``active_learning.score_*`` route and runs on the
``gpu`` queue (retraining and scoring need the model); ``active_learning.select_round`` runs on
the default queue. The services check the round's state and progress first, so a redelivered task
is harmless. A database hiccup is retried; anything else marks the round failed.
"""

from __future__ import annotations

import traceback

from celery import chain, shared_task
from django.db import InterfaceError, OperationalError

from active_learning import services

_TRANSIENT = (OperationalError, InterfaceError)


def start_round_pipeline(*, generation_id: int, needs_scores: bool) -> None:
    """Send the launch pipeline: score (when a PRM is involved), then select."""
    if needs_scores:
        chain(
            score_round.si(generation_id=generation_id),
            select_round.si(generation_id=generation_id),
        ).apply_async()
    else:
        select_round.delay(generation_id=generation_id)


def _fail(generation_id: int, exc: BaseException) -> None:
    message = (
        str(exc)
        if isinstance(exc, services.RoundError)
        else "".join(traceback.format_exception(exc))
    )
    services.round_fail(generation_id=generation_id, error=message)


def _run_pipeline_step(task, service, generation_id: int):
    """Run one launch step under a heartbeat (``progress.worker`` / ``progress.heartbeat_at``, the
    shared job runner's, so a sweep can tell a dead step from a slow one): transient errors retry
    with back-off, anything else fails the round."""
    try:
        with services.round_keep_alive(generation_id):
            return service(generation_id=generation_id)
    except _TRANSIENT as exc:
        if task.request.retries < task.max_retries:
            raise task.retry(exc=exc, countdown=5 * (task.request.retries + 1)) from exc
        _fail(generation_id, exc)
        raise
    except Exception as exc:
        _fail(generation_id, exc)
        raise


@shared_task(name="active_learning.score_round", bind=True, acks_late=True, max_retries=3)
def score_round(self, *, generation_id: int) -> bool:
    return _run_pipeline_step(self, services.round_prepare_scores, generation_id)


@shared_task(name="active_learning.select_round", bind=True, acks_late=True, max_retries=3)
def select_round(self, *, generation_id: int) -> int:
    return _run_pipeline_step(self, services.round_select, generation_id)


@shared_task(name="stepwise.active_learning.finish_rounds")
def finish_rounds() -> int:
    """Beat task (every minute, default queue): fully labeled rounds become finished."""
    return services.rounds_finish_complete()
