"""Selection strategies for active-learning rounds, as pure functions (no Django, no database).

These are the reference semantics. ``active_learning.selection`` runs the same strategies as SQL
over pools too large for Python, and a test checks that both pick the same solutions in the same
order. The simulation (``active_learning.simulation``) calls these functions directly.

Every strategy takes a sequence of :class:`Candidate` and returns a list of :class:`Pick` in batch
order (first = most wanted). Ties always break by ascending ``solution_id``, so a selection is a
function of its input alone.

Strategies
----------
``convincing_wrong_answer`` (Lightman et al. 2023, section 4.1)
    A share of the batch (``wrong_share``, default 0.8) is filled with the highest-scoring solutions
    whose final answer is wrong; the rest is the highest-scoring of whatever remains (right or
    wrong answers). If there are too few wrong-answer solutions the rest fills the gap.
    ``scope="global"`` ranks the whole pool; ``scope="per_problem"`` takes ``per_problem``
    solutions from every problem, split the same way inside each problem, and interleaves the
    problems (every problem's first pick, then every problem's second pick, ...).
    ``per_problem_cap`` bounds how many solutions one problem contributes to the whole batch.
``uniform``
    Seeded random order: the key of a candidate is ``md5(f"{seed}:{solution_id}")``, which the SQL
    version computes identically.
``uncertainty``
    Solutions whose least certain step is closest to a coin flip first: the key is
    ``min over steps |p_negative - 0.5|`` (smaller = more uncertain).
"""

from __future__ import annotations

import hashlib
import math
import numbers
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard

STRATEGIES = ("convincing_wrong_answer", "uniform", "uncertainty")
DEFAULT_WRONG_SHARE = 0.8

# Why a solution was picked; recorded with the selection.
REASON_WRONG = "wrong_answer"
REASON_REST = "rest"
REASON_UNIFORM = "uniform"
REASON_UNCERTAIN = "uncertainty"


@dataclass(frozen=True)
class Candidate:
    """A solution that may be selected.

    ``score`` is the PRM's solution score (None when no PRM scored the pool, which only
    ``uniform`` accepts). ``step_probs`` holds ``(p_negative, p_neutral, p_positive)`` per step
    and is needed only by ``uncertainty``.
    """

    solution_id: int
    problem_id: int
    score: float | None
    is_wrong: bool
    step_probs: Sequence[Sequence[float]] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Pick:
    """A selected solution, the PRM score it had, and the key and reason that chose it."""

    solution_id: int
    score: float | None
    reason: str
    key: float | str | None = None


class StrategyError(ValueError):
    """Bad strategy parameters or a pool the strategy cannot rank."""


# ------------------------------------------------------------------ parameters


def wrong_quota(size: int, wrong_share: float) -> int:
    """How many of ``size`` picks go to wrong-answer solutions (half rounds up)."""
    return math.floor(size * wrong_share + 0.5)


def _whole(value: object) -> TypeGuard[int]:
    # numbers.Integral admits numpy integers too; bool is an int but never a count.
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_common(size: int, per_problem_cap: int | None) -> None:
    if not _whole(size) or size < 0:
        raise StrategyError("size must be a whole number >= 0")
    if per_problem_cap is not None and (not _whole(per_problem_cap) or per_problem_cap < 1):
        raise StrategyError("per_problem_cap must be a whole number >= 1 (or None for no cap)")


def _check_share(wrong_share: float) -> None:
    if (
        not isinstance(wrong_share, int | float)
        or isinstance(wrong_share, bool)
        or not 0.0 <= wrong_share <= 1.0
    ):
        raise StrategyError("wrong_share must be a number between 0 and 1")


def _require_scores(pool: Sequence[Candidate]) -> None:
    missing = [c.solution_id for c in pool if c.score is None]
    if missing:
        raise StrategyError(f"{len(missing)} candidates have no PRM score (e.g. {missing[0]})")


def _by_score(c: Candidate) -> tuple[float, int]:
    # Highest score first, then lowest id.
    return (-(c.score or 0.0), c.solution_id)


def _take_capped(
    ranked: Iterable[Candidate], limit: int, cap: int | None, taken: Counter[int]
) -> list[Candidate]:
    """The first ``limit`` of ``ranked`` while no problem exceeds ``cap`` (counting ``taken``)."""
    out: list[Candidate] = []
    if limit <= 0:
        return out
    for c in ranked:
        if cap is not None and taken[c.problem_id] >= cap:
            continue
        out.append(c)
        taken[c.problem_id] += 1
        if len(out) >= limit:
            break
    return out


# ------------------------------------------------------------------ strategies


def convincing_wrong_answer(
    pool: Sequence[Candidate],
    size: int,
    *,
    wrong_share: float = DEFAULT_WRONG_SHARE,
    per_problem_cap: int | None = None,
    scope: str = "global",
    per_problem: int | None = None,
) -> list[Pick]:
    """The most convincing wrong-answer solutions, then the most convincing of the rest.

    Global scope: wrong-answer picks come first (by score), then the rest (by score).
    Per-problem scope: see the module docstring; ``per_problem`` is required.
    """
    _check_common(size, per_problem_cap)
    _check_share(wrong_share)
    _require_scores(pool)
    if scope == "global":
        return _cwa_global(pool, size, wrong_share, per_problem_cap)
    if scope == "per_problem":
        if not _whole(per_problem) or per_problem < 1:
            raise StrategyError("per_problem scope needs per_problem, a whole number >= 1")
        return _cwa_per_problem(pool, size, wrong_share, per_problem_cap, per_problem)
    raise StrategyError(f"unknown scope {scope!r}: use 'global' or 'per_problem'")


def _cwa_global(
    pool: Sequence[Candidate], size: int, wrong_share: float, cap: int | None
) -> list[Pick]:
    ranked = sorted(pool, key=_by_score)
    taken: Counter[int] = Counter()
    wrong = _take_capped(
        (c for c in ranked if c.is_wrong), wrong_quota(size, wrong_share), cap, taken
    )
    chosen = {c.solution_id for c in wrong}
    rest = _take_capped(
        (c for c in ranked if c.solution_id not in chosen), size - len(wrong), cap, taken
    )
    return [Pick(c.solution_id, c.score, REASON_WRONG, c.score) for c in wrong] + [
        Pick(c.solution_id, c.score, REASON_REST, c.score) for c in rest
    ]


def _cwa_per_problem(
    pool: Sequence[Candidate], size: int, wrong_share: float, cap: int | None, per_problem: int
) -> list[Pick]:
    n = per_problem if cap is None else min(per_problem, cap)
    quota = min(wrong_quota(per_problem, wrong_share), n)
    by_problem: dict[int, list[Candidate]] = defaultdict(list)
    for c in pool:
        by_problem[c.problem_id].append(c)
    # (slot within its problem, -score, id) orders the interleaving across problems.
    slotted: list[tuple[int, float, int, Pick]] = []
    for candidates in by_problem.values():
        ranked = sorted(candidates, key=_by_score)
        wrong = [c for c in ranked if c.is_wrong][:quota]
        chosen = {c.solution_id for c in wrong}
        rest = [c for c in ranked if c.solution_id not in chosen][: n - len(wrong)]
        for slot, c in enumerate(wrong, start=1):
            slotted.append(
                (
                    slot,
                    -(c.score or 0.0),
                    c.solution_id,
                    Pick(c.solution_id, c.score, REASON_WRONG, c.score),
                )
            )
        for slot, c in enumerate(rest, start=len(wrong) + 1):
            slotted.append(
                (
                    slot,
                    -(c.score or 0.0),
                    c.solution_id,
                    Pick(c.solution_id, c.score, REASON_REST, c.score),
                )
            )
    slotted.sort(key=lambda t: t[:3])
    return [t[3] for t in slotted[:size]]


def uniform_key(seed: int, solution_id: int) -> str:
    """The random sort key of a solution: md5 hex of ``"<seed>:<id>"`` (same as the SQL)."""
    return hashlib.md5(f"{seed}:{solution_id}".encode()).hexdigest()


def uniform(
    pool: Sequence[Candidate], size: int, *, seed: int = 0, per_problem_cap: int | None = None
) -> list[Pick]:
    """A seeded random sample; the same seed and pool always give the same batch."""
    _check_common(size, per_problem_cap)
    if not _whole(seed):
        raise StrategyError("seed must be a whole number")
    ranked = sorted(pool, key=lambda c: (uniform_key(seed, c.solution_id), c.solution_id))
    picked = _take_capped(ranked, size, per_problem_cap, Counter())
    return [
        Pick(c.solution_id, c.score, REASON_UNIFORM, uniform_key(seed, c.solution_id))
        for c in picked
    ]


def step_margin(step_probs: Sequence[Sequence[float]]) -> float:
    """``min over steps |p_negative - 0.5|``: 0 = some step is a coin flip, 0.5 = all certain."""
    if not step_probs:
        return 0.5
    return min(abs(float(p[0]) - 0.5) for p in step_probs)


def uncertainty(
    pool: Sequence[Candidate], size: int, *, per_problem_cap: int | None = None
) -> list[Pick]:
    """Solutions whose least certain step is closest to 50% negative come first.

    A candidate without step probabilities (or with no steps) counts as fully certain (0.5).
    """
    _check_common(size, per_problem_cap)
    keyed = sorted(
        ((step_margin(c.step_probs or ()), c) for c in pool), key=lambda t: (t[0], t[1].solution_id)
    )
    picked_ids = {
        c.solution_id for c in _take_capped((c for _, c in keyed), size, per_problem_cap, Counter())
    }
    return [
        Pick(c.solution_id, c.score, REASON_UNCERTAIN, key)
        for key, c in keyed
        if c.solution_id in picked_ids
    ]


def select(
    pool: Sequence[Candidate], size: int, strategy: str, params: dict[str, Any] | None = None
) -> list[Pick]:
    """Dispatch by strategy name; ``params`` are the strategy's keyword arguments."""
    params = dict(params or {})
    fn: Callable[..., list[Pick]]
    if strategy == "convincing_wrong_answer":
        allowed = {"wrong_share", "per_problem_cap", "scope", "per_problem"}
        fn = convincing_wrong_answer
    elif strategy == "uniform":
        allowed = {"seed", "per_problem_cap"}
        fn = uniform
    elif strategy == "uncertainty":
        allowed = {"per_problem_cap"}
        fn = uncertainty
    else:
        raise StrategyError(f"unknown strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}")
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise StrategyError(f"unknown parameters for {strategy}: {', '.join(unknown)}")
    return fn(pool, size, **params)
