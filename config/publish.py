"""Sending a job's task to the broker (Redis) in a way that survives a broker outage.

Every place that starts a job (a training, evaluation, scoring or sampling run, a round's launch
step) publishes through ``publish``. When the broker cannot be reached the publish does not
raise: it logs a warning and returns None, the job's row stays as it was stored (queued, with
no ``celery_task_id``), and a beat sweep sends it once the broker is back:
``config.jobs.RunRows.publish_unpublished`` for runs (the ``stepwise.training.sweep_stale_runs``
beat task, every minute), ``active_learning.launch_sweep`` for rounds. A request that starts a
job therefore answers as usual while Redis is down, and the job runs later; tasks are idempotent,
so a message sent twice (the sweep raced a slow publish) costs nothing.

Only broker errors are caught: a task that cannot be encoded, or any other bug, still raises.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

# What a publish raises while the broker (or the Redis result backend, which subscribes to the
# task's result before sending it) is unreachable: kombu wraps the transport's connection errors
# in its OperationalError (which celery re-exports as celery.exceptions.OperationalError), the
# result backend raises redis-py's own (or a RuntimeError raised from one: `broker_unreachable`),
# and a socket may time out or be refused below both.
BROKER_ERRORS: tuple[type[BaseException], ...] = (
    KombuOperationalError,
    RedisConnectionError,
    RedisTimeoutError,
    ConnectionError,
    TimeoutError,
)

# How long a sender keeps trying (``publish``'s `retry_policy`, in kombu's terms: the waits
# between tries start at interval_start and grow by interval_step up to interval_max). A web
# request tries briefly (a request must not hang); a worker passing a round on to its next step
# waits out a broker restart of about two minutes.
QUICK_RETRY: dict[str, float] = {
    "max_retries": 2,
    "interval_start": 0.0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
PATIENT_RETRY: dict[str, float] = {
    "max_retries": 12,
    "interval_start": 1.0,
    "interval_step": 2.0,
    "interval_max": 15.0,
}
# Each try: kombu may reconnect once (a pooled connection that died with the old Redis), no more.
_ONE_TRY: dict[str, float] = {
    "max_retries": 1,
    "interval_start": 0.0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}


def _waits(policy: dict[str, float]) -> list[float]:
    start, step, most = policy["interval_start"], policy["interval_step"], policy["interval_max"]
    return [min(start + step * n, most) for n in range(int(policy["max_retries"]))]


def broker_unreachable(exc: BaseException) -> bool:
    """Is `exc` (or what caused it) the broker or the result store being unreachable? Celery's
    Redis result backend gives up with a bare RuntimeError ("Retry limit exceeded while trying to
    reconnect") raised from the connection error."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, BROKER_ERRORS):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def publish(
    task: Any,
    *,
    kwargs: dict[str, Any],
    subject: str,
    what: str = "its task",
    later: str = "the job sweep will send it once the broker is back",
    retry_policy: dict[str, float] | None = None,
    **options: Any,
) -> str | None:
    """Send `task` with `kwargs`; the task id, or None (with a warning) when the broker is
    unreachable. `subject`, `what` and `later` make the warning: "<subject>: could not send
    <what>, the broker is unreachable (...); <later>".

    The task's result is not kept (``ignore_result``) unless `options` say otherwise: a job's
    outcome lives in its row, and without it the sender would first subscribe to the result in
    the result store, which (Redis again) retries for about 20 s before giving up."""
    options.setdefault("ignore_result", True)
    waits = _waits(retry_policy or QUICK_RETRY)
    for tried in range(len(waits) + 1):
        try:
            result = task.apply_async(kwargs=kwargs, retry=True, retry_policy=_ONE_TRY, **options)
        except Exception as exc:
            if not broker_unreachable(exc):
                raise
            if tried < len(waits):
                time.sleep(waits[tried])
                continue
            logger.warning(
                "%s: could not send %s, the broker is unreachable (%s: %s); %s",
                subject,
                what,
                type(exc).__name__,
                str(exc).strip(),
                later,
            )
            return None
        return result.id
    return None  # not reached: the last try returns or raises
