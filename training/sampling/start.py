"""Starting a run: the request checked, frozen and keyed, so an identical request finds its run."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from config.jobs import append_log
from labeling.imports import ImportLineError
from training.generator import (
    FewShotPrompt,
    GeneratorError,
    SamplingParams,
)
from training.models import SamplingRun
from training.sampling.common import (
    ACTIVE_STATES,
    COUNT_KEYS,
    MAX_NEW_TOKENS,
    MAX_SAMPLES_PER_PROBLEM,
    SAMPLING_KEYS,
)
from training.sampling.generators import default_generator, generator_resolve
from training.sampling.problems import problems_from_file, problems_select
from training.services.errors import json_safe


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
    given = {"temperature": temperature, "top_p": top_p, "max_new_tokens": max_new_tokens}
    values.update({key: value for key, value in given.items() if value is not None})
    params = _sampling_params(values, config, errors)
    few_shot = _few_shot(prompt, config, errors)
    if errors:
        raise ValidationError(errors)
    return _Validated(params=params, prompt=few_shot)


def _sampling_params(
    values: dict[str, Any], config: dict[str, Any], errors: dict[str, list[str]]
) -> SamplingParams | None:
    """The sampling parameters (the request's over the generator's defaults); None with
    `errors` filled when one is out of range."""
    temperature = values.get("temperature", 0.7)
    if not isinstance(temperature, int | float) or not 0 <= temperature <= 2:
        errors["temperature"] = ["Give a temperature from 0 to 2."]
    top_p = values.get("top_p", 1.0)
    if not isinstance(top_p, int | float) or not 0 < top_p <= 1:
        errors["top_p"] = ["Give top_p in (0, 1]."]
    tokens = values.get("max_new_tokens", 384)
    if type(tokens) is not int or not 1 <= tokens <= MAX_NEW_TOKENS:
        errors["max_new_tokens"] = [f"Give a whole number of tokens from 1 to {MAX_NEW_TOKENS}."]
    force = bool(values.get("force_answer", False))
    if force and config.get("backend") == "openai" and config.get("endpoint", "chat") == "chat":
        errors["generator"] = [
            "force_answer needs the completions endpoint (a chat endpoint cannot continue a reply)."
        ]
    if errors:
        return None
    return SamplingParams(
        temperature=float(temperature),
        top_p=float(top_p),
        max_new_tokens=tokens,
        stop=tuple(values.get("stop", ())),
        force_answer=force,
    )


def _few_shot(
    prompt: FewShotPrompt | dict | None, config: dict[str, Any], errors: dict[str, list[str]]
) -> FewShotPrompt:
    """The request's prompt, else the generator's prompt file, else the default prompt."""
    try:
        if isinstance(prompt, FewShotPrompt):
            return prompt
        if prompt is not None:
            return FewShotPrompt.from_dict(prompt)
        if config.get("prompt_file"):
            return FewShotPrompt.from_file(config["prompt_file"])
    except GeneratorError as exc:
        errors["prompt"] = [str(exc)]
    return FewShotPrompt()


def enqueue_run(run: SamplingRun) -> bool:
    """Send the run's task; False when the broker is unreachable (the run stays queued and the
    beat sweep sends it once the broker is back: `config.publish`)."""
    from training import tasks  # tasks import this module
    from training.sampling.run import SAMPLING  # run imports this module

    return SAMPLING.publish(run, tasks.sample_solutions_task)


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
    selection = _selection(split, limit, problems_file, problem_ids)
    with transaction.atomic():
        if problems_file:
            try:
                problem_ids = problems_from_file(problems_file)
            except ImportLineError as exc:
                raise ValidationError({"problems_file": [str(exc)]}) from exc
        ids = problems_select(split=split, limit=limit, problem_ids=problem_ids)
        params = _frozen_request(generator, config, checked, seed, samples, ids, selection)
        run, created = _find_or_create(generator, params, created_by)
        if created and enqueue:
            transaction.on_commit(lambda: enqueue_run(run))
    return run, created


def _selection(
    split: str | None, limit: int | None, problems_file: str | None, problem_ids: list | None
) -> dict[str, Any]:
    """How the problems were chosen, as the run records it."""
    return {
        "split": split or None,
        "limit": limit,
        "problems_file": str(problems_file) if problems_file else None,
        "problem_ids_given": problem_ids is not None and not problems_file,
    }


def _frozen_request(
    generator: str,
    config: dict[str, Any],
    checked: _Validated,
    seed: int,
    samples: int,
    ids: list[int],
    selection: dict[str, Any],
) -> dict[str, Any]:
    """The run's `params`: everything that fixes its samples, as it was asked for."""
    key = sampling_key(
        generator=generator, config=config, prompt=checked.prompt, params=checked.params, seed=seed
    )
    return {
        "samples": samples,
        "seed": seed,
        "problem_ids": ids,
        "selection": selection,
        "sampling": checked.params.as_dict(),
        "generator_config": json_safe(config),
        "prompt": checked.prompt.as_dict(),
        "prompt_sha256": checked.prompt.sha256,
        "sampling_key": key,
    }


def _find_or_create(generator: str, params: dict[str, Any], created_by) -> tuple[SamplingRun, bool]:
    """The live or finished run of this exact request, else a new queued one: (run, created)."""
    request_key = _sha256(
        {
            "sampling_key": params["sampling_key"],
            "problems": params["problem_ids"],
            "samples": params["samples"],
        }
    )
    existing = SamplingRun.objects.filter(request_key=request_key, state__in=ACTIVE_STATES)
    run = existing.first()
    if run is not None:
        return run, False
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
    samples, problems = params["samples"], len(params["problem_ids"])
    append_log(run, f"queued: {samples} samples for each of {problems} problems with {generator}")
    run.save(update_fields=["log"])
    return run, True
