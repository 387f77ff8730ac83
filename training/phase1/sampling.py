"""Candidates for the next step of a trajectory: stored once per prefix, sampled at most once.

Sampling runs in the web process (a request waits for it; see docs/phase1.md for why and for
the OpenAI-compatible alternative). A backend is built once per process and round config and
kept: loading a local model per request would cost more than sampling.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from typing import Any

from django.db import IntegrityError, connection, transaction

from labeling.models import Assignment, TrajectoryCandidates
from training.generator import Backend, FewShotPrompt, SamplingParams, build_backend
from training.generator.steps import sample_next_steps, step_seeds

_backends: dict[str, Backend] = {}
_backends_lock = threading.Lock()
# Advisory-lock namespace of candidate sampling (high 32 bits of the 64-bit key).
_LOCK_NAMESPACE = 0x50483131


def prefix_sha256(steps: list[str]) -> str:
    """Identifies a trajectory so far (its step texts, in order)."""
    payload = json.dumps(steps, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def round_backend(round_params: dict[str, Any]) -> Backend:
    """The backend of a phase-1 round's generator, built on first use in this process."""
    from training.sampling import _api_key

    key = hashlib.sha256(
        json.dumps(
            [round_params["generator"], round_params["generator_config"], round_params["prompt"]],
            sort_keys=True,
        ).encode()
    ).hexdigest()
    with _backends_lock:
        backend = _backends.get(key)
        if backend is None:
            config = dict(round_params["generator_config"])
            if config["backend"] == "local":
                config["model"] = config["model_path"]
            else:
                config["api_key"] = _api_key(round_params["generator"], config)
            prompt = FewShotPrompt.from_dict(round_params["prompt"])
            backend = build_backend(round_params["generator"], config, prompt)
            _backends[key] = backend
        return backend


def round_sampling_params(round_params: dict[str, Any]) -> SamplingParams:
    sampling = round_params["sampling"]
    return SamplingParams(
        temperature=sampling["temperature"],
        top_p=sampling["top_p"],
        max_new_tokens=sampling["max_new_tokens"],
        force_answer=sampling["force_answer"],
    )


def _lock_key(assignment_id: int, digest: str) -> int:
    # A signed 64-bit key: namespace in the high half, assignment and prefix mixed in the low.
    low = (assignment_id * 0x9E3779B1 ^ int(digest[:8], 16)) & 0xFFFF_FFFF
    value = (_LOCK_NAMESPACE << 32) | low
    return value - (1 << 64) if value >= 1 << 63 else value


def _lead(assignment: Assignment) -> str:
    """``"\n"`` when the round's generator puts a blank line between steps.

    Learned from the round's latest candidate set after a first step: if every candidate there
    began with a blank line (each cost a second pass), or that set already started after one,
    the next sampling starts after a blank line too.
    """
    last = (
        TrajectoryCandidates.objects.filter(
            assignment__task__generation_id=assignment.task.generation_id, position__gte=1
        )
        .order_by("-id")
        .values_list("sampling", "candidates")
        .first()
    )
    if last is None:
        return ""
    info, candidates = last
    passes = info.get("passes") or {}
    all_blank = bool(candidates) and passes.get("blank", 0) >= len(info.get("seeds") or [0])
    return "\n" if info.get("lead") or all_blank else ""


def candidates_get_or_sample(
    *,
    assignment: Assignment,
    problem: str,
    steps: list[str],
    round_params: dict[str, Any],
    prefetched: bool = False,
) -> TrajectoryCandidates:
    """The stored candidates for the step after ``steps``; sampled and stored when missing.

    Two requests for the same prefix (a prefetch and the choice it guessed, two tabs) sample
    once: the second waits on a session advisory lock held while the first samples, then finds
    the stored row. Call outside a transaction: sampling takes seconds and must hold no row lock.
    """
    digest = prefix_sha256(steps)
    stored = TrajectoryCandidates.objects.filter(assignment=assignment, prefix_sha256=digest)
    found = stored.first()
    if found is not None:
        return found
    key = _lock_key(assignment.pk, digest)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [key])
    try:
        found = stored.first()
        if found is not None:
            return found
        seeds = step_seeds(round_params["seed"], f"{assignment.pk}:{digest}", round_params["k"])
        params = round_sampling_params(round_params)
        lead = _lead(assignment) if steps else ""
        started = time.perf_counter()
        stats: dict[str, int] = {}
        candidates = sample_next_steps(
            round_backend(round_params),
            problem=problem,
            steps=steps,
            seeds=seeds,
            params=params,
            lead=lead,
            stats=stats,
        )
        elapsed_ms = round((time.perf_counter() - started) * 1000)
        try:
            with transaction.atomic():
                return TrajectoryCandidates.objects.create(
                    assignment=assignment,
                    position=len(steps),
                    prefix_sha256=digest,
                    candidates=[c.as_dict() for c in candidates],
                    sampling={
                        "generator": round_params["generator"],
                        "seeds": seeds,
                        **params.as_dict(),
                        # backend calls, candidates asked again after a blank line, answers
                        "passes": stats,
                        "lead": lead,
                    },
                    elapsed_ms=elapsed_ms,
                    prefetched=prefetched,
                )
        except IntegrityError:  # stored meanwhile by a process that did not take the lock
            return stored.get()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
