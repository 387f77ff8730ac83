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

The package, by part: ``generators`` (configs, backends), ``problems`` (which problems),
``start`` (checking, freezing and keying a request), ``run`` (claim, chunks, sweep, selectors,
on the shared job runner ``config.jobs``) and ``store`` (grading, de-duplicating, writing).
The names below are re-exported.
"""

from __future__ import annotations

from training.sampling.common import (
    ACTIVE_STATES,
    COUNT_KEYS,
    DEFAULT_CHUNK_ROWS,
    MAX_CHUNK_PROBLEMS,
    MAX_NEW_TOKENS,
    MAX_SAMPLES_PER_PROBLEM,
    SAMPLING_KEYS,
    SECRET_KEYS,
    SOLUTION_SOURCE,
    Progress,
    SamplingError,
)
from training.sampling.generators import (
    _api_key,  # noqa: F401 - training/phase1/sampling.py imports it from here
    backend_for_run,
    default_generator,
    generator_configs,
    generator_list,
    generator_resolve,
)
from training.sampling.problems import (
    problems_from_file,
    problems_select,
)
from training.sampling.run import (
    SAMPLING,
    sampling_run_claim,
    sampling_run_execute,
    sampling_run_get,
    sampling_run_list,
    sampling_runs_sweep_stale,
)
from training.sampling.start import (
    enqueue_run,
    sampling_key,
    sampling_run_start,
)
from training.sampling.store import (
    Drawn,
    Keeper,
    classify,
    store_chunk,
)

__all__ = [
    "ACTIVE_STATES",
    "COUNT_KEYS",
    "DEFAULT_CHUNK_ROWS",
    "Drawn",
    "Keeper",
    "MAX_CHUNK_PROBLEMS",
    "MAX_NEW_TOKENS",
    "MAX_SAMPLES_PER_PROBLEM",
    "Progress",
    "SAMPLING",
    "SAMPLING_KEYS",
    "SECRET_KEYS",
    "SOLUTION_SOURCE",
    "SamplingError",
    "backend_for_run",
    "classify",
    "default_generator",
    "enqueue_run",
    "generator_configs",
    "generator_list",
    "generator_resolve",
    "problems_from_file",
    "problems_select",
    "sampling_key",
    "sampling_run_claim",
    "sampling_run_execute",
    "sampling_run_get",
    "sampling_run_list",
    "sampling_run_start",
    "sampling_runs_sweep_stale",
    "store_chunk",
]
