"""What every generator backend shares: sampling parameters, requests, completions, errors.

A backend turns problems into sampled completions. It knows nothing of the database: the Django
side (training/sampling.py) decides which problems to sample, then splits, grades, de-duplicates
and stores what comes back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from config.errors import StepwiseError


class GeneratorError(StepwiseError):
    """A generator could not be built or could not sample (bad config, server down, ...).

    The message is meant for the admin as it is: it names the generator, the setting or the
    server that failed. Through the API it is a 503 with code ``generator_error``.
    """

    status_code = 503
    code = "generator_error"


@dataclass(frozen=True)
class SamplingParams:
    """How to sample. The same values give the same samples (up to the backend's determinism).

    `stop` strings end a sample (the stop string itself is not kept); `max_new_tokens` caps
    its length (a capped sample ends with finish_reason "length" and is never forced to answer).
    """

    temperature: float = 0.7
    top_p: float = 1.0
    max_new_tokens: int = 384
    stop: tuple[str, ...] = ()
    # A sample that ends without an answer marker gets `# Answer` appended and the model writes
    # the answer line (small models rarely write the marker on their own; see docs/generation.md).
    force_answer: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.temperature <= 5.0:
            raise ValueError(f"temperature must be in [0, 5], got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stop"] = list(self.stop)
        return data


@dataclass(frozen=True)
class SampleRequest:
    """One problem and the seeds of the samples wanted for it (one seed per sample).

    A sample's seed alone fixes its randomness, whatever else is in the batch, so asking again
    for the same (problem, seed) gives the same text (see `sample_seed`).
    """

    problem: str
    seeds: tuple[int, ...]
    # Text the answer already starts with (phase 1: the steps chosen so far, one per line); the
    # samples continue it and do not repeat it.
    prefix: str = ""


# The answer block a forced answer starts with, and how long that answer may be.
FORCED_ANSWER_PREFIX = "\n\n# Answer\n\n"
FORCED_ANSWER_TOKENS = 32


@dataclass
class Completion:
    text: str
    finish_reason: str  # "stop" (end of text or a stop string) or "length"
    completion_tokens: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def needs_forced_answer(completion: Completion) -> bool:
    """Did the sample end on its own, with some reasoning but no answer marker?"""
    from training.generator.parse import split_solution

    if completion.finish_reason != "stop" or not completion.text.strip():
        return False
    return split_solution(completion.text).answer is None


def with_forced_answer(completion: Completion, answer_text: str, tokens: int) -> Completion:
    """The sample with the answer the model wrote after the forced marker (its first line)."""
    answer = answer_text.strip().split("\n")[0].strip()
    if not answer:
        return completion
    return Completion(
        text=completion.text.rstrip() + FORCED_ANSWER_PREFIX + answer,
        finish_reason=completion.finish_reason,
        completion_tokens=completion.completion_tokens + tokens,
        extra={**completion.extra, "forced_answer": True},
    )


class Backend(Protocol):
    """A source of samples. `describe()` is recorded with every solution it produced."""

    def describe(self) -> dict[str, Any]: ...

    def sample(
        self,
        requests: Sequence[SampleRequest],
        params: SamplingParams,
        progress: Callable[[float], None] | None = None,
    ) -> list[list[Completion]]:
        """One list of completions per request, in the order of its seeds. `progress` is called
        (on the calling thread) with the share of this call's work done so far."""
        ...

    def close(self) -> None: ...


def sample_seed(seed: int, problem_key: str, index: int) -> int:
    """The seed of sample `index` of a problem: fixed by the run's seed, the problem and the index.

    31 bits, which every server accepts (llama.cpp takes uint32, vLLM a signed int).
    """
    digest = hashlib.sha256(f"{seed}\x1f{problem_key}\x1f{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFF_FFFF
