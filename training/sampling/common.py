"""What every part of sampling shares: limits, count names, the domain error."""

from __future__ import annotations

from collections.abc import Callable

from training.models import SamplingRun
from training.services.errors import TrainingError

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
