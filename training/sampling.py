"""Candidate pools sampled from a generator: services (writes) and selectors (reads).

A sampling run freezes its request when it is created: the problems (ids, in order), samples
per problem, generator, prompt, sampling parameters and seed. The work then runs like the
training runs of training/services.py (claimed under SELECT FOR UPDATE, attempts, heartbeat, a
lost worker's run taken over or failed by the sweep), in chunks of problems. Each chunk's
samples are split into steps, their final answer extracted and graded, de-duplicated and stored
in one transaction that also moves the run's cursor, so an attempt that dies mid-way is resumed
without storing anything twice.

Nothing is sampled twice for the same request:
- an identical request (same problems, samples, generator, prompt, parameters and seed) finds
  the run that did it (or is doing it) instead of starting another;
- every stored sample records its sampling key (generator + prompt + parameters + seed) and its
  index, unique per problem: an overlapping request (more samples, more problems) only draws the
  samples that are missing;
- a sample's seed is fixed by the run's seed, the problem's text and the sample's index, so a
  sample drawn again (one that was kept out before) comes out the same and is kept out again;
- a sample whose steps equal a stored solution's (same fingerprint) is a duplicate.
Samples with no reasoning step (`empty`) or no final answer (`no_answer`) are counted and not
stored. See docs/generation.md.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from config.jobs import AttemptSuperseded, Reporter, RunRows, append_log
from labeling.grading import extract_final_answer, grade_answer
from labeling.imports import ImportLineError, import_problems, solution_fingerprint
from labeling.imports.common import lock_imports, text_md5
from labeling.models import Problem, Solution, Step
from training.generator import (
    Backend,
    Completion,
    FewShotPrompt,
    GeneratorError,
    SampleRequest,
    SamplingParams,
    build_backend,
    sample_seed,
    split_solution,
)
from training.models import SamplingRun
from training.services.base_models import base_model_path
from training.services.errors import TrainingError, json_safe

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], None]

SOLUTION_SOURCE = "generated"
MAX_SAMPLES_PER_PROBLEM = 1000
MAX_NEW_TOKENS = 8192
# Samples sampled (and stored) together; a chunk is also the unit of resumption.
DEFAULT_CHUNK_ROWS = {"local": 32, "openai": 64}
MAX_CHUNK_PROBLEMS = 64
# Sampling settings a generator config may give defaults for.
SAMPLING_KEYS = ("temperature", "top_p", "max_new_tokens", "stop", "force_answer")
# Config keys never stored on a run (the worker reads them from its own settings).
SECRET_KEYS = ("api_key",)
COUNT_KEYS = (
    "requested",
    "kept",
    "duplicates",
    "no_answer",
    "empty",
    "already_sampled",
    "correct",
    "wrong",
    "ungraded",
    # Of the samples drawn, how many were cut at max_new_tokens (whatever became of them).
    "truncated",
)
ACTIVE_STATES = (
    SamplingRun.State.QUEUED,
    SamplingRun.State.RUNNING,
    SamplingRun.State.SUCCEEDED,
)


class SamplingError(TrainingError):
    """A domain error of a sampling run, shown to the admin as it is (400 in the API)."""


# --------------------------------------------------------------------------- generators


def generator_configs() -> dict[str, dict[str, Any]]:
    """Configured generators by name (settings.STEPWISE_GENERATORS)."""
    return {name: dict(config) for name, config in settings.STEPWISE_GENERATORS.items()}


def default_generator() -> str:
    return settings.STEPWISE_GENERATOR_DEFAULT


def _local_model_path(model: str) -> Path | None:
    """A local model's directory: a registered base model, a path, or a STEPWISE_MODEL_DIR entry."""
    for candidate in (
        Path(base_model_path(model)),
        Path(settings.STEPWISE_MODEL_DIR) / model,
    ):
        if (candidate / "config.json").is_file():
            return candidate.resolve()
    return None


def generator_resolve(name: str) -> dict[str, Any]:
    """The generator's config as a run stores it: local model path resolved, secrets left out.

    Raises ValidationError on the `generator` field when it is unknown or its model is missing.
    """
    configs = generator_configs()
    if name not in configs:
        known = ", ".join(sorted(configs)) or "none"
        raise ValidationError(
            {"generator": [f"No generator named {name!r} (configured: {known})."]}
        )
    config = {k: v for k, v in configs[name].items() if k not in SECRET_KEYS}
    backend = config.get("backend")
    if backend == "local":
        model = str(config.get("model") or "")
        path = _local_model_path(model) if model else None
        if path is None:
            raise ValidationError(
                {
                    "generator": [
                        f"Generator {name}: model {model!r} is not a registered base model, a "
                        f"model directory, nor in {settings.STEPWISE_MODEL_DIR} "
                        "(python manage.py prepare_models puts SmolLM2 there)."
                    ]
                }
            )
        config["model_path"] = str(path)
    elif backend == "openai":
        missing = [key for key in ("base_url", "model") if not config.get(key)]
        if missing:
            raise ValidationError(
                {"generator": [f"Generator {name}: set {' and '.join(missing)} in its config."]}
            )
    else:
        raise ValidationError(
            {"generator": [f"Generator {name}: backend must be local or openai, got {backend!r}."]}
        )
    return config


def generator_list() -> list[dict[str, Any]]:
    """What the console offers: each generator, its backend and model, and whether it is usable."""
    default = default_generator()
    rows = []
    for name, config in sorted(generator_configs().items()):
        row: dict[str, Any] = {
            "name": name,
            "backend": config.get("backend", ""),
            "model": str(config.get("model", "")),
            "base_url": config.get("base_url", ""),
            "is_default": name == default,
            "available": True,
            "problem": "",
        }
        try:
            generator_resolve(name)
        except ValidationError as exc:
            row["available"], row["problem"] = False, exc.message_dict["generator"][0]
        rows.append(row)
    return rows


def _api_key(name: str, config: dict[str, Any]) -> str | None:
    """The server's key: `api_key` in this machine's settings, or the env var `api_key_env`."""
    current = generator_configs().get(name, {})
    if current.get("api_key"):
        return str(current["api_key"])
    variable = current.get("api_key_env") or config.get("api_key_env")
    if variable:
        key = os.environ.get(variable)
        if not key:
            raise SamplingError(f"generator {name}: environment variable {variable} is not set")
        return key
    return None


def backend_for_run(run: SamplingRun) -> Backend:
    """The run's backend, built from its stored config (plus this machine's secret, if any)."""
    config = dict(run.params["generator_config"])
    prompt = FewShotPrompt.from_dict(run.params["prompt"])
    if config["backend"] == "local":
        config["model"] = config["model_path"]
    else:
        config["api_key"] = _api_key(run.generator, config)
    return build_backend(run.generator, config, prompt)


# --------------------------------------------------------------------------- problems


def problems_from_file(path: str | Path) -> list[int]:
    """Problems of a MATH-style JSONL file, in file order, imported first when they are new.

    The import is the usual one (atomic, idempotent): a bad line raises ImportLineError naming
    the line and field, and nothing is kept.
    """
    path = Path(path)
    if not path.is_file():
        raise ValidationError({"problems_file": [f"{path} is not a file."]})
    import_problems(path)
    keys: list[tuple[str, str]] = []
    with path.open("rb") as handle:
        for raw in handle:
            if not raw.strip():
                continue
            record = json.loads(raw)
            if record.get("unique_id"):
                keys.append(("source_id", record["unique_id"]))
            else:
                keys.append(("md5", text_md5(record["problem"])))
    by_source = dict(
        Problem.objects.filter(source_id__in=[v for k, v in keys if k == "source_id"]).values_list(
            "source_id", "id"
        )
    )
    md5s = [v for k, v in keys if k == "md5"]
    by_md5: dict[str, int] = {}
    if md5s:
        from django.db.models.functions import MD5

        by_md5 = dict(
            Problem.objects.annotate(text_hash=MD5("text"))
            .filter(text_hash__in=md5s)
            .values_list("text_hash", "id")
        )
    ids: list[int] = []
    for kind, value in keys:
        problem_id = by_source.get(value) if kind == "source_id" else by_md5.get(value)
        if problem_id is not None and problem_id not in ids:
            ids.append(problem_id)
    return ids


def problems_select(
    *, split: str | None = None, limit: int | None = None, problem_ids: list[int] | None = None
) -> list[int]:
    """Problem ids in a stable order: the given ids (checked), else a split's, else all; the
    first `limit` of them."""
    if problem_ids is not None:
        found = set(Problem.objects.filter(id__in=problem_ids).values_list("id", flat=True))
        missing = [pid for pid in problem_ids if pid not in found]
        if missing:
            shown = ", ".join(str(pid) for pid in missing[:10])
            raise ValidationError({"problem_ids": [f"No problem with id {shown}."]})
        ids = list(dict.fromkeys(problem_ids))
        if split:
            in_split = set(
                Problem.objects.filter(id__in=ids, split=split).values_list("id", flat=True)
            )
            ids = [pid for pid in ids if pid in in_split]
    else:
        problems = Problem.objects.order_by("id")
        if split:
            problems = problems.filter(split=split)
        ids = list(
            problems.values_list("id", flat=True)[:limit]
            if limit
            else problems.values_list("id", flat=True)
        )
    if limit:
        ids = ids[:limit]
    if not ids:
        field = "split" if split else "problem_ids" if problem_ids is not None else "limit"
        where = f" in split {split!r}" if split else ""
        raise ValidationError({field: [f"No problem to sample{where}: import problems first."]})
    return ids


# --------------------------------------------------------------------------- starting a run


def _sha256(value: Any) -> str:
    payload = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def sampling_key(
    *,
    generator: str,
    config: dict[str, Any],
    prompt: FewShotPrompt,
    params: SamplingParams,
    seed: int,
) -> str:
    """What fixes a sample besides its problem and index. The model is named as configured (not
    its resolved path or server URL), so moving the files or the server changes nothing."""
    return _sha256(
        {
            "generator": generator,
            "backend": config.get("backend"),
            "model": str(config.get("model", "")),
            "endpoint": config.get("endpoint", ""),
            "prompt": prompt.sha256,
            "params": params.as_dict(),
            "seed": seed,
        }
    )


@dataclass
class _Validated:
    params: SamplingParams
    prompt: FewShotPrompt


def _validate(
    *,
    samples: Any,
    config: dict[str, Any],
    temperature: float | None,
    top_p: float | None,
    max_new_tokens: int | None,
    seed: Any,
    prompt: FewShotPrompt | dict | None,
) -> _Validated:
    errors: dict[str, list[str]] = {}
    if type(samples) is not int or not 1 <= samples <= MAX_SAMPLES_PER_PROBLEM:
        errors["samples"] = [f"Give a whole number of samples from 1 to {MAX_SAMPLES_PER_PROBLEM}."]
    if type(seed) is not int or not 0 <= seed < 2**31:
        errors["seed"] = ["Give a whole number from 0 to 2147483647."]
    values = {key: config[key] for key in SAMPLING_KEYS if key in config}
    for key, value in (
        ("temperature", temperature),
        ("top_p", top_p),
        ("max_new_tokens", max_new_tokens),
    ):
        if value is not None:
            values[key] = value
    temperature_value = values.get("temperature", 0.7)
    if not isinstance(temperature_value, int | float) or not 0 <= temperature_value <= 2:
        errors["temperature"] = ["Give a temperature from 0 to 2."]
    top_p_value = values.get("top_p", 1.0)
    if not isinstance(top_p_value, int | float) or not 0 < top_p_value <= 1:
        errors["top_p"] = ["Give top_p in (0, 1]."]
    tokens = values.get("max_new_tokens", 384)
    if type(tokens) is not int or not 1 <= tokens <= MAX_NEW_TOKENS:
        errors["max_new_tokens"] = [f"Give a whole number of tokens from 1 to {MAX_NEW_TOKENS}."]
    few_shot = FewShotPrompt()
    try:
        if isinstance(prompt, FewShotPrompt):
            few_shot = prompt
        elif prompt is not None:
            few_shot = FewShotPrompt.from_dict(prompt)
        elif config.get("prompt_file"):
            few_shot = FewShotPrompt.from_file(config["prompt_file"])
    except GeneratorError as exc:
        errors["prompt"] = [str(exc)]
    force = bool(values.get("force_answer", False))
    if force and config.get("backend") == "openai" and config.get("endpoint", "chat") == "chat":
        errors["generator"] = [
            "force_answer needs the completions endpoint (a chat endpoint cannot continue a reply)."
        ]
    if errors:
        raise ValidationError(errors)
    return _Validated(
        params=SamplingParams(
            temperature=float(temperature_value),
            top_p=float(top_p_value),
            max_new_tokens=tokens,
            stop=tuple(values.get("stop", ())),
            force_answer=force,
        ),
        prompt=few_shot,
    )


def _enqueue(run: SamplingRun) -> None:
    from training import tasks  # tasks import this module

    result = tasks.sample_solutions_task.apply_async(kwargs={"run_id": run.id})
    SamplingRun.objects.filter(id=run.id).update(celery_task_id=result.id)


def sampling_run_start(
    *,
    samples: int,
    generator: str | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    max_new_tokens: int | None = None,
    seed: int = 0,
    split: str | None = None,
    limit: int | None = None,
    problem_ids: list[int] | None = None,
    problems_file: str | None = None,
    prompt: FewShotPrompt | dict | None = None,
    created_by=None,
    enqueue: bool = True,
) -> tuple[SamplingRun, bool]:
    """A queued run for this request, or the run that already has it: (run, created).

    The task is sent once the transaction commits. Field errors raise ValidationError (nothing
    is written); `problems_file` imports the file's problems first (see `problems_from_file`).
    """
    generator = generator or default_generator()
    config = generator_resolve(generator)
    checked = _validate(
        samples=samples,
        config=config,
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        seed=seed,
        prompt=prompt,
    )
    if limit is not None and (type(limit) is not int or limit < 1):
        raise ValidationError({"limit": ["Give a whole number of problems, at least 1."]})
    with transaction.atomic():
        if problems_file:
            try:
                problem_ids = problems_from_file(problems_file)
            except ImportLineError as exc:
                raise ValidationError({"problems_file": [str(exc)]}) from exc
        ids = problems_select(split=split, limit=limit, problem_ids=problem_ids)
        key = sampling_key(
            generator=generator,
            config=config,
            prompt=checked.prompt,
            params=checked.params,
            seed=seed,
        )
        request_key = _sha256({"sampling_key": key, "problems": ids, "samples": samples})
        existing = SamplingRun.objects.filter(request_key=request_key, state__in=ACTIVE_STATES)
        run = existing.first()
        if run is not None:
            return run, False
        params = {
            "samples": samples,
            "seed": seed,
            "problem_ids": ids,
            "selection": {
                "split": split or None,
                "limit": limit,
                "problems_file": str(problems_file) if problems_file else None,
                "problem_ids_given": problem_ids is not None and not problems_file,
            },
            "sampling": checked.params.as_dict(),
            "generator_config": json_safe(config),
            "prompt": checked.prompt.as_dict(),
            "prompt_sha256": checked.prompt.sha256,
            "sampling_key": key,
        }
        try:
            with transaction.atomic():
                run = SamplingRun.objects.create(
                    generator=generator,
                    params=params,
                    request_key=request_key,
                    counts={name: 0 for name in COUNT_KEYS},
                    created_by=created_by if getattr(created_by, "pk", None) else None,
                )
        except IntegrityError:
            # The same request started at the same moment elsewhere: that run is the one.
            return existing.get(), False
        append_log(
            run,
            f"queued: {samples} samples for each of {len(ids)} problems with {generator}",
        )
        run.save(update_fields=["log"])
        if enqueue:
            transaction.on_commit(lambda: _enqueue(run))
    return run, True


# --------------------------------------------------------------------------- running a run

# Claim, fence, heartbeat and sweep: the shared job runner, as for training runs.
SAMPLING = RunRows(SamplingRun, label="sampling run", enqueue=_enqueue)


def _resume_note(run: SamplingRun) -> str:
    problems = len(run.params.get("problem_ids", []))
    return f", from problem {run.cursor + 1} of {problems}" if run.cursor else ""


def sampling_run_claim(*, run_id: int) -> SamplingRun | None:
    """Take the run for this process, or None when there is nothing to do (`RunRows.claim`:
    finished runs stay finished, a live attempt is left alone, a lost one is taken over up to
    STEPWISE_TRAINING_MAX_ATTEMPTS). The progress stays: the run goes on from its cursor."""
    return SAMPLING.claim(run_id, note=_resume_note, reset_progress=False)


@dataclass
class _Drawn:
    problem: Problem
    index: int
    seed: int
    completion: Completion


def _classify(
    drawn: list[_Drawn], counts: dict[str, int]
) -> list[tuple[_Drawn, list[str], str | None, str]]:
    """Split, extract and grade each sample (outside any transaction: grading can take a while).
    Returns the keepers with steps, final answer and grade; counts the rest."""
    keepers = []
    for sample in drawn:
        if sample.completion.finish_reason == "length":
            counts["truncated"] += 1
        parsed = split_solution(sample.completion.text)
        if parsed.is_empty:
            counts["empty"] += 1
            continue
        answer = extract_final_answer(parsed.steps)
        if answer is None:
            counts["no_answer"] += 1
            continue
        reference = sample.problem.reference_answer or ""
        if not reference.strip():
            grade = Solution.Grade.UNGRADED
        elif grade_answer(answer, reference):
            grade = Solution.Grade.CORRECT
        else:
            grade = Solution.Grade.WRONG
        keepers.append((sample, parsed.steps, answer, grade))
    return keepers


def _store(
    run: SamplingRun,
    keepers: list[tuple[_Drawn, list[str], str | None, str]],
    counts: dict[str, int],
) -> None:
    """Write the new solutions and steps. Call inside the chunk's transaction, holding the
    imports' lock (imports create solutions by fingerprint too)."""
    params = run.params
    # Another run with the same sampling key may have stored some of these indexes meanwhile.
    taken = set(
        Solution.objects.filter(
            problem_id__in={sample.problem.id for sample, *_ in keepers},
            sampling_key=params["sampling_key"],
        ).values_list("problem_id", "sample_index")
    )
    counts["already_sampled"] += sum((s.problem.id, s.index) in taken for s, *_ in keepers)
    keepers = [k for k in keepers if (k[0].problem.id, k[0].index) not in taken]
    fingerprints = {
        solution_fingerprint(sample.problem.id, steps): (sample, steps, answer, grade)
        for sample, steps, answer, grade in reversed(keepers)  # the first sample wins
    }
    counts["duplicates"] += len(keepers) - len(fingerprints)
    existing = set(
        Solution.objects.filter(fingerprint__in=fingerprints).values_list("fingerprint", flat=True)
    )
    counts["duplicates"] += len(existing)
    description = {
        key: params["generator_config"].get(key)
        for key in ("backend", "model", "endpoint")
        if params["generator_config"].get(key) is not None
    }
    new = []
    for fingerprint, (sample, steps, answer, grade) in fingerprints.items():
        if fingerprint in existing:
            continue
        completion = sample.completion
        new.append(
            (
                Solution(
                    problem=sample.problem,
                    final_answer=answer,
                    grade=grade,
                    generator=run.generator,
                    source=SOLUTION_SOURCE,
                    is_pre_generated=True,
                    fingerprint=fingerprint,
                    num_steps=len(steps),
                    sampling_key=params["sampling_key"],
                    sample_index=sample.index,
                    generation_params={
                        "generator": run.generator,
                        **description,
                        "prompt_sha256": params["prompt_sha256"],
                        **params["sampling"],
                        "seed": params["seed"],
                        "sample_index": sample.index,
                        "sample_seed": sample.seed,
                        "finish_reason": completion.finish_reason,
                        "completion_tokens": completion.completion_tokens,
                        **(
                            {"forced_answer": True} if completion.extra.get("forced_answer") else {}
                        ),
                        "sampling_run": run.id,
                    },
                ),
                steps,
            )
        )
    new.sort(key=lambda item: (item[0].problem.id, item[0].sample_index))
    solutions = Solution.objects.bulk_create([solution for solution, _ in new])
    Step.objects.bulk_create(
        [
            Step(solution=solution, position=position, text=text)
            for solution, (_, steps) in zip(solutions, new, strict=True)
            for position, text in enumerate(steps)
        ]
    )
    counts["kept"] += len(solutions)
    for solution in solutions:
        counts[solution.grade] += 1


def _chunk_problems(run: SamplingRun) -> int:
    config = run.params["generator_config"]
    rows = int(config.get("chunk_rows") or DEFAULT_CHUNK_ROWS.get(config["backend"], 32))
    return max(1, min(MAX_CHUNK_PROBLEMS, rows // max(1, run.params["samples"])))


def _sample(run: SamplingRun, reporter: Reporter) -> dict[str, int]:
    params = run.params
    ids: list[int] = params["problem_ids"]
    samples: int = params["samples"]
    sampling = SamplingParams(**{**params["sampling"], "stop": tuple(params["sampling"]["stop"])})
    key = params["sampling_key"]
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
            problems = Problem.objects.in_bulk(chunk_ids)
            chunk = [problems[pid] for pid in chunk_ids if pid in problems]
            done = set(
                Solution.objects.filter(problem_id__in=chunk_ids, sampling_key=key).values_list(
                    "problem_id", "sample_index"
                )
            )
            counts = {name: 0 for name in COUNT_KEYS}
            counts["requested"] = samples * len(chunk_ids)
            counts["already_sampled"] = len(done)
            wanted: list[tuple[Problem, list[int]]] = []
            for problem in chunk:
                indexes = [i for i in range(samples) if (problem.id, i) not in done]
                if indexes:
                    wanted.append((problem, indexes))
            with SAMPLING.keep_alive(run.id, reporter.attempt):
                drawn: list[_Drawn] = []
                if wanted:
                    requests = [
                        SampleRequest(
                            problem=problem.text,
                            seeds=tuple(
                                sample_seed(params["seed"], text_md5(problem.text), i)
                                for i in indexes
                            ),
                        )
                        for problem, indexes in wanted
                    ]
                    start, share = cursor / total, len(chunk_ids) / total
                    drawing = sum(len(indexes) for _, indexes in wanted)
                    reporter(
                        start,
                        f"sampling problems {cursor + 1}-{cursor + len(chunk_ids)} of {total} "
                        f"({drawing} samples)",
                    )

                    def within(fraction: float, start=start, share=share) -> None:
                        reporter(start + fraction * share)

                    completions = backend.sample(requests, sampling, progress=within)
                    for (problem, indexes), request, outs in zip(
                        wanted, requests, completions, strict=True
                    ):
                        for index, seed, completion in zip(
                            indexes, request.seeds, outs, strict=True
                        ):
                            drawn.append(_Drawn(problem, index, seed, completion))
                keepers = _classify(drawn, counts)
                with transaction.atomic():
                    lock_imports()
                    owned = SAMPLING.lock_owned(run.id, reporter.attempt)
                    _store(owned, keepers, counts)
                    owned.counts = {
                        name: owned.counts.get(name, 0) + counts[name] for name in COUNT_KEYS
                    }
                    owned.cursor = cursor + len(chunk_ids)
                    owned.save(update_fields=["counts", "cursor"])
            cursor += len(chunk_ids)
            summary = owned.counts
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


def sampling_run_execute(*, run_id: int, echo: Progress | None = None) -> SamplingRun | None:
    """Do the work of a run (the Celery task and the command call this). None when there was
    nothing to do (finished already, or running elsewhere)."""
    run = sampling_run_claim(run_id=run_id)
    if run is None:
        return None
    reporter = Reporter(SAMPLING, run, echo)
    try:
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


# --------------------------------------------------------------------------- selectors


def sampling_run_list() -> QuerySet[SamplingRun]:
    return SamplingRun.objects.select_related("created_by").order_by("-created_at", "-id")


def sampling_run_get(*, run_id: int) -> SamplingRun:
    return SamplingRun.objects.select_related("created_by").get(id=run_id)
