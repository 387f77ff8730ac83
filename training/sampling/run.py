"""Running a run on the shared job runner (`config.jobs`): claim, chunks of problems under a
heartbeat, each stored with the cursor in one transaction; the sweep; the selectors."""

from __future__ import annotations

import logging
import traceback

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from config.jobs import AttemptSuperseded, Reporter, RunRows
from labeling.imports.common import lock_imports, text_md5
from labeling.models import Problem, Solution
from training.generator import (
    Backend,
    GeneratorError,
    SampleRequest,
    SamplingParams,
    sample_seed,
)
from training.models import SamplingRun
from training.sampling.common import COUNT_KEYS, DEFAULT_CHUNK_ROWS, MAX_CHUNK_PROBLEMS, Progress
from training.sampling.generators import backend_for_run
from training.sampling.start import enqueue_run
from training.sampling.store import Drawn, classify, store_chunk
from training.services.errors import TrainingError

logger = logging.getLogger(__name__)


# Claim, fence, heartbeat and sweep: the shared job runner, as for training runs.
SAMPLING = RunRows(SamplingRun, label="sampling run", enqueue=enqueue_run)


def _resume_note(run: SamplingRun) -> str:
    problems = len(run.params.get("problem_ids", []))
    return f", from problem {run.cursor + 1} of {problems}" if run.cursor else ""


def sampling_run_claim(*, run_id: int) -> SamplingRun | None:
    """Take the run for this process, or None when there is nothing to do (`RunRows.claim`:
    finished runs stay finished, a live attempt is left alone, a lost one is taken over up to
    STEPWISE_TRAINING_MAX_ATTEMPTS). The progress stays: the run goes on from its cursor."""
    return SAMPLING.claim(run_id, note=_resume_note, reset_progress=False)


def _chunk_problems(run: SamplingRun) -> int:
    config = run.params["generator_config"]
    rows = int(config.get("chunk_rows") or DEFAULT_CHUNK_ROWS.get(config["backend"], 32))
    return max(1, min(MAX_CHUNK_PROBLEMS, rows // max(1, run.params["samples"])))


def _sample(run: SamplingRun, reporter: Reporter) -> dict[str, int]:
    """Sample the run's problems from its cursor on, a chunk at a time; returns the run's counts."""
    params = run.params
    ids: list[int] = params["problem_ids"]
    sampling = SamplingParams(**{**params["sampling"], "stop": tuple(params["sampling"]["stop"])})
    total = len(ids)
    reporter(run.cursor / total, f"loading generator {run.generator}", force=True)
    backend = backend_for_run(run)
    try:
        if hasattr(backend, "check"):
            served = backend.check()
            model = params["generator_config"].get("model")
            if served and model not in served:
                reporter(run.cursor / total, f"the server lists {served}, not {model!r}")
        per_chunk = _chunk_problems(run)
        cursor = run.cursor
        while cursor < total:
            chunk_ids = ids[cursor : cursor + per_chunk]
            summary = _sample_chunk(run, reporter, backend, sampling, cursor, chunk_ids)
            cursor += len(chunk_ids)
            reporter(
                cursor / total,
                f"problems {cursor}/{total}: kept {summary['kept']} "
                f"({summary['correct']} correct), duplicates {summary['duplicates']}, "
                f"no answer {summary['no_answer']} ({summary['truncated']} cut at "
                f"{sampling.max_new_tokens} tokens), empty {summary['empty']}, "
                f"sampled before {summary['already_sampled']}",
                force=True,
            )
    finally:
        backend.close()
    return SamplingRun.objects.values_list("counts", flat=True).get(id=run.id)


def _sample_chunk(
    run: SamplingRun,
    reporter: Reporter,
    backend: Backend,
    sampling: SamplingParams,
    cursor: int,
    chunk_ids: list[int],
) -> dict[str, int]:
    """Draw a chunk's missing samples, store the keepers and move the cursor in one transaction
    (fenced: only the attempt that owns the run writes). Returns the run's counts after it."""
    samples: int = run.params["samples"]
    problems = Problem.objects.in_bulk(chunk_ids)
    chunk = [problems[pid] for pid in chunk_ids if pid in problems]
    done = set(
        Solution.objects.filter(
            problem_id__in=chunk_ids, sampling_key=run.params["sampling_key"]
        ).values_list("problem_id", "sample_index")
    )
    counts = {name: 0 for name in COUNT_KEYS}
    counts["requested"] = samples * len(chunk_ids)
    counts["already_sampled"] = len(done)
    wanted: list[tuple[Problem, list[int]]] = []
    for problem in chunk:
        indexes = [i for i in range(samples) if (problem.id, i) not in done]
        if indexes:
            wanted.append((problem, indexes))
    drawn = (
        _draw(run, reporter, backend, sampling, wanted, cursor, len(chunk_ids)) if wanted else []
    )
    keepers = classify(drawn, counts)
    with transaction.atomic():
        lock_imports()
        owned = SAMPLING.lock_owned(run.id, reporter.attempt)
        store_chunk(owned, keepers, counts)
        owned.counts = {name: owned.counts.get(name, 0) + counts[name] for name in COUNT_KEYS}
        owned.cursor = cursor + len(chunk_ids)
        owned.save(update_fields=["counts", "cursor"])
    return owned.counts


def _draw(
    run: SamplingRun,
    reporter: Reporter,
    backend: Backend,
    sampling: SamplingParams,
    wanted: list[tuple[Problem, list[int]]],
    cursor: int,
    size: int,
) -> list[Drawn]:
    """One backend call for the wanted (problem, sample indexes), each with its fixed seed."""
    total = len(run.params["problem_ids"])
    requests = [
        SampleRequest(
            problem=problem.text,
            seeds=tuple(
                sample_seed(run.params["seed"], text_md5(problem.text), i) for i in indexes
            ),
        )
        for problem, indexes in wanted
    ]
    start, share = cursor / total, size / total
    drawing = sum(len(indexes) for _, indexes in wanted)
    reporter(
        start,
        f"sampling problems {cursor + 1}-{cursor + size} of {total} ({drawing} samples)",
    )
    completions = backend.sample(
        requests, sampling, progress=lambda fraction: reporter(start + fraction * share)
    )
    return [
        Drawn(problem, index, seed, completion)
        for (problem, indexes), request, outs in zip(wanted, requests, completions, strict=True)
        for index, seed, completion in zip(indexes, request.seeds, outs, strict=True)
    ]


def sampling_run_execute(*, run_id: int, echo: Progress | None = None) -> SamplingRun | None:
    """Do the work of a run (the Celery task and the command call this). None when there was
    nothing to do (finished already, or running elsewhere)."""
    run = sampling_run_claim(run_id=run_id)
    if run is None:
        return None
    reporter = Reporter(SAMPLING, run, echo)
    try:
        # The heartbeat thread runs for the whole attempt: loading a local model can take
        # longer than the stale limit.
        with SAMPLING.keep_alive(run.id, run.attempts):
            counts = _sample(run, reporter)
    except AttemptSuperseded as exc:
        logger.warning("%s: stopping without writing", exc)
        return None
    except Exception as exc:
        domain = isinstance(exc, GeneratorError | TrainingError | ValidationError)
        error = str(exc) if domain else "".join(traceback.format_exception(exc))
        try:
            reporter.flush()
        except AttemptSuperseded:
            return None
        if not SAMPLING.fail_owned(run_id, reporter.attempt, error):
            return None
        if domain:
            return SamplingRun.objects.get(id=run_id)
        raise
    try:
        reporter(1.0, f"done: {counts['kept']} new solutions", force=True)
        with transaction.atomic():
            run = SAMPLING.lock_owned(run_id, reporter.attempt)
            run.state, run.finished_at, run.progress = (
                SamplingRun.State.SUCCEEDED,
                timezone.now(),
                1.0,
            )
            run.save(update_fields=["state", "finished_at", "progress"])
    except AttemptSuperseded as exc:
        logger.warning("%s: result dropped", exc)
        return None
    return run


def sampling_runs_sweep_stale() -> dict[str, int]:
    """Sweep: running sampling runs whose worker is gone (or silent too long) are sent again
    while they have attempts left (they go on from their cursor), and fail after that."""
    return SAMPLING.sweep()


def sampling_run_list() -> QuerySet[SamplingRun]:
    return SamplingRun.objects.select_related("created_by").order_by("-created_at", "-id")


def sampling_run_get(*, run_id: int) -> SamplingRun:
    return SamplingRun.objects.select_related("created_by").get(id=run_id)
