"""Celery tasks of a round's launch. They take a generation id and call a service.

``active_learning.score_round`` matches the ``active_learning.score_*`` route and runs on the
``gpu`` queue (retraining and scoring need the model); ``active_learning.select_round`` runs on
the default queue; scoring sends the selection when it is done. The services check the round's
state and progress first, so a redelivered task is harmless. A database hiccup is retried;
anything else marks the round failed. A step whose message was lost (the broker was down) is sent
again by the launch sweep (``launch_sweep``, run by the ``finish_rounds`` beat task).
"""

from __future__ import annotations

import logging
import traceback

from celery import shared_task
from django.db import InterfaceError, OperationalError

from active_learning import launch_sweep, services
from config.publish import PATIENT_RETRY, QUICK_RETRY, publish
from labeling.models import Generation

logger = logging.getLogger(__name__)

_TRANSIENT = (OperationalError, InterfaceError)


def send_step(generation_id: int, step: str, *, patient: bool = False) -> bool:
    """Publish one launch step (``score`` or ``select``) of a round; False, with a log line,
    when the broker does not take it (the launch sweep sends it again later).

    Sent from a worker (scoring done, selection next, ``patient``): retried for about two
    minutes, so a broker that restarts meanwhile still gets it. From the web (a launch) only
    briefly: a request must not hang for minutes (``config.publish``)."""
    task = score_round if step == launch_sweep.SCORE else select_round
    task_id = publish(
        task,
        kwargs={"generation_id": generation_id},
        subject=f"round {generation_id}",
        what=f"its {step} step",
        later="the launch sweep will send it again",
        retry_policy=PATIENT_RETRY if patient else QUICK_RETRY,
    )
    return task_id is not None


def start_round_pipeline(*, generation_id: int, needs_scores: bool) -> None:
    """Send the launch pipeline's first step: score (when a PRM is involved), else select.
    Scoring sends the selection itself when it is done."""
    send_step(generation_id, launch_sweep.SCORE if needs_scores else launch_sweep.SELECT)


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
    scored = _run_pipeline_step(self, services.round_prepare_scores, generation_id)
    # Selection follows, also after a duplicate delivery of a round scored already.
    generation = Generation.objects.get(id=generation_id)
    if launch_sweep.round_next_step(generation) == launch_sweep.SELECT:
        send_step(generation_id, launch_sweep.SELECT, patient=True)
    return scored


@shared_task(name="active_learning.select_round", bind=True, acks_late=True, max_retries=3)
def select_round(self, *, generation_id: int) -> int:
    return _run_pipeline_step(self, services.round_select, generation_id)


@shared_task(name="stepwise.active_learning.finish_rounds")
def finish_rounds() -> int:
    """Beat task (every minute, default queue): fully labeled rounds become finished, and
    launches whose pipeline stopped are sent on or failed (``launch_sweep``). Returns how many
    rounds finished."""
    finished = services.rounds_finish_complete()
    launch_sweep.rounds_sweep_stalled(send=send_step)
    return finished
