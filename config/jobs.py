"""The job runner shared by long jobs: training, evaluation and scoring runs, sampling runs, and
the steps of a round's launch pipeline.

A long job is not one transaction. A worker *claims* its row under ``SELECT ... FOR UPDATE``, works
for minutes or hours, writes progress and a *heartbeat* in small transactions, and closes the row
in one last transaction. The parts here:

- ``worker_identity`` ("host:pid") and ``holder_alive``: who holds a job, and whether that holder
  still lives (same host: its process exists; any host: its heartbeat is younger than
  ``STEPWISE_TRAINING_STALE_SECONDS``).
- ``RunRows``: claim / fence / fail / sweep for a model with the run columns (``state``,
  ``attempts``, ``worker``, ``heartbeat_at``, ``progress``, ``log``, ``error``, ``started_at``,
  ``finished_at``; states queued, running, succeeded, failed). ``attempts`` is the fencing token:
  every write of an attempt locks the row and checks that the attempt still owns it, so an attempt
  presumed dead cannot overwrite the one that replaced it (``AttemptSuperseded``).
- ``Reporter``: progress and log lines of an attempt, written (fenced) at most every
  ``WRITE_EVERY_S``.
- ``KeepAlive``: a thread that beats the heartbeat every ``STEPWISE_JOB_HEARTBEAT_SECONDS``
  (10 s) while the job's own thread is busy in a long model call, so a dead worker is told from
  a busy one within the stale limit (60 s) rather than after the longest silent stretch of a job.
- ``Throttle``: the "at most every N seconds" rule of progress writes, for rows (like a round's)
  that keep their progress in a JSON column.

The beat sweep (every ``SWEEP_EVERY_MINUTES``) hands a run whose holder is gone to a new attempt,
up to ``STEPWISE_TRAINING_MAX_ATTEMPTS``, and fails it after that. It also sends the task of a
queued run that never reached the broker (``celery_task_id`` still empty after
``STEPWISE_JOB_PUBLISH_GRACE_SECONDS``: Redis was down when it was started, see
``config.publish``). See docs/training.md.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone

from config.publish import publish

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
LOG_LIMIT = 100_000  # characters of a run log kept (the tail)
WRITE_EVERY_S = 2.0  # progress and log writes of a reporter, at most this often
SWEEP_EVERY_MINUTES = 1


class AttemptSuperseded(Exception):
    """The job was taken over (or failed by the sweep) while this attempt still ran.

    The attempt stops without writing anything: another attempt owns the job now.
    """


# --------------------------------------------------------------------------- holders


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def process_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            # A zombie (Z) or dying (X) process has exited; only its parent has not reaped it yet.
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def stale_after() -> timedelta:
    return timedelta(seconds=settings.STEPWISE_TRAINING_STALE_SECONDS)


def holder_alive(
    worker: str, heartbeat_at: datetime | None, *, now: datetime | None = None
) -> bool:
    """Is the process `worker` ("host:pid") that beat last at `heartbeat_at` still at work?"""
    now = now or timezone.now()
    if heartbeat_at is None or now - heartbeat_at > stale_after():
        return False
    host, _, pid = worker.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        # A worker process runs one job at a time, so a job it had claimed is not running now.
        return int(pid) != os.getpid() and process_alive(int(pid))
    return True  # another machine: only the heartbeat can tell


def append_log(row: Any, message: str) -> None:
    line = f"{timezone.now():%Y-%m-%d %H:%M:%S} {message}\n"
    row.log = (row.log + line)[-LOG_LIMIT:]


# --------------------------------------------------------------------------- run rows


class RunRows:
    """Claim, fence, fail and sweep of one run model (TrainingRun, SamplingRun).

    `on_fail(row)` runs inside the failing transaction (a training also fails its version);
    `enqueue(row)` sends the row's task (through `publish`), for the start and the sweep. A
    row's ``celery_task_id`` is empty until the broker took its task: that is how the sweep
    tells a queued run whose message was never sent.
    """

    def __init__(
        self,
        model: type[models.Model],
        *,
        label: str = "run",
        on_fail: Callable[[Any], None] | None = None,
        enqueue: Callable[[Any], bool] | None = None,
    ):
        self.model = model
        self.label = label
        self.on_fail = on_fail
        self.enqueue = enqueue

    @property
    def states(self) -> Any:
        return self.model.State  # type: ignore[attr-defined]

    def publish(self, row: Any, task: Any) -> bool:
        """Send `task` for `row` (kwargs ``run_id``) and record its id; False when the broker is
        unreachable: the row stays queued without an id, its log says so, and the sweep
        (`publish_unpublished`) sends it once the broker is back."""
        task_id = publish(task, kwargs={"run_id": row.id}, subject=f"{self.label} {row.id}")
        if task_id is not None:
            self.model.objects.filter(id=row.id).update(celery_task_id=task_id)
            return True
        note = "the broker is unreachable: not sent yet; the sweep sends it once it is back"
        with transaction.atomic():
            current = self.model.objects.select_for_update().filter(id=row.id).first()
            # Once per outage, not once per sweep.
            if current is not None and current.state == self.states.QUEUED:
                if not current.log.rstrip("\n").endswith(note):
                    append_log(current, note)
                    current.save(update_fields=["log"])
        return False

    def fail(self, row: Any, error: str) -> None:
        """Mark a run failed. Call inside a transaction."""
        row.state, row.error, row.finished_at = self.states.FAILED, error, timezone.now()
        append_log(row, f"failed: {error.splitlines()[-1] if error else ''}")
        row.save(update_fields=["state", "error", "finished_at", "log"])
        if self.on_fail is not None:
            self.on_fail(row)

    def claim(
        self,
        run_id: int,
        *,
        note: Callable[[Any], str] | None = None,
        reset_progress: bool = True,
    ) -> Any | None:
        """Take the run for this process, or None when there is nothing to do.

        Finished runs are not re-done. A running run whose worker is alive is a duplicate
        delivery and is left alone; one whose worker is gone was lost mid-way and gets another
        attempt, up to STEPWISE_TRAINING_MAX_ATTEMPTS, then fails. `note(row)` adds to the
        "attempt started" log line; a run that resumes where it stopped keeps its progress.
        """
        with transaction.atomic():
            row = self.model.objects.select_for_update().get(id=run_id)
            if not self._claimable(row):
                return None
            now = timezone.now()
            row.state, row.worker, row.heartbeat_at = self.states.RUNNING, worker_identity(), now
            row.attempts += 1
            row.started_at = row.started_at or now
            if reset_progress:
                row.progress = 0.0
            where = note(row) if note else ""
            append_log(row, f"attempt {row.attempts} started in {row.worker}{where}")
            row.save()
            return row

    def _claimable(self, row: Any) -> bool:
        if row.state in (self.states.SUCCEEDED, self.states.FAILED):
            logger.info("%s %s is %s already: nothing to do", self.label, row.id, row.state)
            return False
        if row.state != self.states.RUNNING:
            return True
        if holder_alive(row.worker, row.heartbeat_at):
            logger.info("%s %s is running in %s: duplicate ignored", self.label, row.id, row.worker)
            return False
        append_log(row, f"attempt {row.attempts} lost: worker {row.worker} is gone")
        if row.attempts >= settings.STEPWISE_TRAINING_MAX_ATTEMPTS:
            self.fail(row, f"worker lost during attempt {row.attempts} (no attempts left)")
            return False
        return True

    def lock_owned(self, run_id: int, attempt: int) -> Any:
        """Lock the run and check this process's attempt still owns it (inside a transaction).

        This is the fence that keeps a presumed-dead attempt (say, one that was silent too long)
        from overwriting the work of the attempt that replaced it.
        """
        row = self.model.objects.select_for_update().get(id=run_id)
        if (
            row.state != self.states.RUNNING
            or row.attempts != attempt
            or row.worker != worker_identity()
        ):
            raise AttemptSuperseded(
                f"{self.label} {run_id} attempt {attempt} is no longer ours ({row.state})"
            )
        return row

    def fail_owned(self, run_id: int, attempt: int, error: str) -> bool:
        """Fail the run if this attempt still owns it; False when it was superseded."""
        try:
            with transaction.atomic():
                self.fail(self.lock_owned(run_id, attempt), error)
        except AttemptSuperseded:
            logger.warning("%s %s: attempt %s failed after losing it", self.label, run_id, attempt)
            return False
        return True

    def beat(self, run_id: int, attempt: int) -> int:
        """One heartbeat of an attempt, unless it lost the run (then 0 rows change)."""
        return self.model.objects.filter(
            id=run_id, attempts=attempt, state=self.states.RUNNING, worker=worker_identity()
        ).update(heartbeat_at=timezone.now())

    def keep_alive(self, run_id: int, attempt: int) -> KeepAlive:
        return KeepAlive(lambda: self.beat(run_id, attempt), name=f"{self.label} {run_id}")

    def sweep(self, *, now: datetime | None = None) -> dict[str, int]:
        """Runs whose holder is gone get another attempt (re-sent) or, with none left, fail.

        Returns {"retried": n, "failed": m}.
        """
        now = now or timezone.now()
        counts = {"retried": 0, "failed": 0}
        running = self.model.objects.filter(state=self.states.RUNNING)
        for run_id in running.values_list("id", flat=True):
            with transaction.atomic():
                row = self.model.objects.select_for_update().get(id=run_id)
                if row.state != self.states.RUNNING or holder_alive(
                    row.worker, row.heartbeat_at, now=now
                ):
                    continue
                counts[self._sweep_one(row)] += 1
        return counts

    def _sweep_one(self, row: Any) -> str:
        lost = f"worker {row.worker} lost: no heartbeat since {row.heartbeat_at}"
        if self.enqueue is None or row.attempts >= settings.STEPWISE_TRAINING_MAX_ATTEMPTS:
            self.fail(row, lost)
            return "failed"
        # Queued again: the next claim counts a new attempt; the dead one's leftovers are its.
        append_log(row, f"attempt {row.attempts} lost ({lost}); sent again by the sweep")
        # No task id until the broker takes the new message: if it is down now, the next sweep
        # finds the run among the unpublished ones.
        row.state, row.worker, row.celery_task_id = self.states.QUEUED, "", ""
        row.save(update_fields=["state", "worker", "celery_task_id", "log"])
        transaction.on_commit(lambda: self.enqueue(row))
        return "retried"

    def publish_unpublished(self, *, now: datetime | None = None) -> int:
        """Send the task of each queued run that the broker never took (no ``celery_task_id``)
        and that is older than ``STEPWISE_JOB_PUBLISH_GRACE_SECONDS`` (younger ones may be in the
        middle of their first publish). Returns how many the broker took now; the others wait for
        the next sweep. A row another sweep holds is skipped; a duplicate message is harmless
        (the claim ignores a run that is running or finished)."""
        if self.enqueue is None:
            return 0
        now = now or timezone.now()
        cutoff = now - timedelta(seconds=settings.STEPWISE_JOB_PUBLISH_GRACE_SECONDS)
        unpublished = self.model.objects.filter(
            state=self.states.QUEUED, celery_task_id="", created_at__lte=cutoff
        )
        sent = 0
        for run_id in unpublished.order_by("id").values_list("id", flat=True):
            with transaction.atomic():
                row = (
                    self.model.objects.select_for_update(skip_locked=True)
                    .filter(id=run_id, state=self.states.QUEUED, celery_task_id="")
                    .first()
                )
                if row is None:
                    continue
                # Sent while the row is locked: a worker that gets it at once waits for the
                # commit in its claim, and a second sweep skips the row.
                if not self.enqueue(row):
                    break  # the broker is still down: the rest wait for the next sweep
                append_log(row, "sent by the sweep: its task had not reached the broker")
                row.save(update_fields=["log"])
                sent += 1
                logger.warning(
                    "%s %s: its task had not reached the broker; sent by the sweep",
                    self.label,
                    row.id,
                )
        return sent


class Reporter:
    """Progress, log lines and heartbeat of an attempt, written at most every WRITE_EVERY_S."""

    def __init__(self, rows: RunRows, run: Any, echo: Progress | None = None):
        self.rows = rows
        self.run_id = run.id
        self.attempt = run.attempts
        self.echo = echo
        self._last_write = 0.0
        self._pending: list[str] = []
        self._progress = 0.0
        self._message = ""

    def __call__(self, fraction: float, message: str = "", *, force: bool = False) -> None:
        self._progress = min(max(float(fraction), self._progress), 1.0)
        if message and message != self._message:
            self._pending.append(message)
            self._message = message
        if self.echo is not None:
            self.echo(self._progress, message)
        if force or time.monotonic() - self._last_write >= WRITE_EVERY_S:
            self.flush()

    def scaled(self, start: float, end: float) -> Progress:
        return lambda fraction, message="": self(start + (end - start) * fraction, message)

    def flush(self) -> None:
        with transaction.atomic():
            run = self.rows.lock_owned(self.run_id, self.attempt)
            for message in self._pending:
                append_log(run, message)
            run.progress, run.heartbeat_at = self._progress, timezone.now()
            run.save(update_fields=["progress", "heartbeat_at", "log"])
        self._pending.clear()
        self._last_write = time.monotonic()


class KeepAlive:
    """Call `beat` every `every` seconds from a thread while the `with` block runs.

    The block's own thread may sit for minutes in one model call; the thread keeps the job's
    heartbeat young meanwhile. A beat that fails is logged and retried at the next tick.
    """

    def __init__(self, beat: Callable[[], Any], *, every: float | None = None, name: str = "job"):
        self.beat, self.name = beat, name
        self.every = settings.STEPWISE_JOB_HEARTBEAT_SECONDS if every is None else every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"keepalive {name}")

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.every):
                try:
                    self.beat()
                except Exception:  # noqa: BLE001 - a missed beat must not kill the job
                    logger.exception("%s: heartbeat failed", self.name)
        finally:
            connection.close()  # this thread's own connection

    def __enter__(self) -> KeepAlive:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._stop.set()
        self._thread.join()


class Throttle:
    """True at most once every `every` seconds (and always for a final call)."""

    def __init__(self, every: float):
        self.every = every
        self._last = 0.0

    def due(self, *, final: bool = False) -> bool:
        now = time.monotonic()
        if not final and now - self._last < self.every:
            return False
        self._last = now
        return True
