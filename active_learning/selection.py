"""The selection strategies of ``active_learning.strategies``, run as SQL inside Postgres.

A round may choose from a million scored candidates; loading them into Python would cost minutes
and gigabytes, so the ranking, the per-problem caps (``row_number() OVER (PARTITION BY problem)``)
and the 80/20 split happen in one statement and only the chosen ids come back. The pure functions
in ``strategies`` are the reference: ``tests/active_learning/test_selection_sql.py`` checks both
agree on random pools. See ``docs/round-selection.md``.

A *pool* is any SQL relation with the columns
``solution_id bigint, problem_id bigint, score float8 (nullable), is_wrong bool, step_probs jsonb``.
``candidate_pool`` builds the real one (graded, unlabeled, unqueued solutions with their scores).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection

from active_learning import strategies
from active_learning.strategies import Pick, StrategyError


@dataclass(frozen=True)
class PoolQuery:
    """A SQL relation of candidates and its parameters."""

    sql: str
    params: Sequence[object] = ()
    # False when the pool has no PRM scores (a round without a PRM): only ``uniform`` applies.
    scored: bool = True


def candidate_pool(*, prm_version_id: int | None) -> PoolQuery:
    """Solutions that may be queued in a new round.

    Graded (correct or wrong), never labeled, and not in any task that is still live (open,
    paused or done; withdrawn tasks are ``cancelled`` and free their solution again). With a PRM
    version only solutions it scored are candidates; without one the score is NULL.
    """
    from labeling.models import Labeling, LabelingTask, Solution
    from training.models import SolutionScore

    solution = Solution._meta.db_table
    labeling = Labeling._meta.db_table
    task = LabelingTask._meta.db_table
    filters = f"""
        s.grade IN ('correct', 'wrong')
        AND NOT EXISTS (SELECT 1 FROM {labeling} l WHERE l.solution_id = s.id)
        AND NOT EXISTS (
            SELECT 1 FROM {task} t WHERE t.solution_id = s.id AND t.state <> 'cancelled'
        )"""
    if prm_version_id is None:
        return PoolQuery(
            f"""SELECT s.id AS solution_id, s.problem_id, NULL::float8 AS score,
                       s.grade = 'wrong' AS is_wrong, NULL::jsonb AS step_probs
                FROM {solution} s WHERE {filters}""",
            scored=False,
        )
    score = SolutionScore._meta.db_table
    return PoolQuery(
        f"""SELECT s.id AS solution_id, s.problem_id, sc.score,
                   s.grade = 'wrong' AS is_wrong, sc.step_probabilities AS step_probs
            FROM {score} sc JOIN {solution} s ON s.id = sc.solution_id
            WHERE sc.prm_version_id = %s AND {filters}""",
        (prm_version_id,),
    )


def _cap_filter(rank: str, cap: int | None) -> str:
    return "TRUE" if cap is None else f"{rank} <= {int(cap)}"


def _sql_convincing_global(size: int, quota: int, cap: int | None) -> tuple[str, list]:
    if cap is None:
        # No cap: two top-N scans, no window functions.
        wrong = """SELECT solution_id, problem_id, score FROM pool WHERE is_wrong
                   ORDER BY score DESC, solution_id LIMIT %s"""
        rest = """SELECT p.solution_id, p.score FROM pool p
                  WHERE NOT EXISTS (SELECT 1 FROM wrong_pick w WHERE w.solution_id = p.solution_id)
                  ORDER BY p.score DESC, p.solution_id
                  LIMIT greatest(%s - (SELECT count(*) FROM wrong_pick), 0)"""
        head = f"wrong_pick AS ({wrong}), rest_pick AS ({rest})"
    else:
        head = f"""
        wrong_ranked AS (
            SELECT solution_id, problem_id, score,
                   row_number() OVER (PARTITION BY problem_id ORDER BY score DESC, solution_id) AS rn
            FROM pool WHERE is_wrong),
        wrong_pick AS (
            SELECT solution_id, problem_id, score FROM wrong_ranked WHERE {_cap_filter("rn", cap)}
            ORDER BY score DESC, solution_id LIMIT %s),
        taken AS (SELECT problem_id, count(*) AS n FROM wrong_pick GROUP BY problem_id),
        rest_ranked AS (
            SELECT p.solution_id, p.problem_id, p.score,
                   row_number() OVER (PARTITION BY p.problem_id
                                      ORDER BY p.score DESC, p.solution_id) AS rn
            FROM pool p
            WHERE NOT EXISTS (SELECT 1 FROM wrong_pick w WHERE w.solution_id = p.solution_id)),
        rest_pick AS (
            SELECT r.solution_id, r.score FROM rest_ranked r
            LEFT JOIN taken t ON t.problem_id = r.problem_id
            WHERE {_cap_filter("r.rn + coalesce(t.n, 0)", cap)}
            ORDER BY r.score DESC, r.solution_id
            LIMIT greatest(%s - (SELECT count(*) FROM wrong_pick), 0))"""
    sql = f"""{head}
        SELECT solution_id, score, reason, score AS key FROM (
            SELECT solution_id, score, '{strategies.REASON_WRONG}' AS reason, 1 AS part
            FROM wrong_pick
            UNION ALL
            SELECT solution_id, score, '{strategies.REASON_REST}', 2 FROM rest_pick) picked
        ORDER BY part, score DESC, solution_id"""
    return sql, [quota, size]


def _sql_convincing_per_problem(size: int, quota: int, per_problem: int) -> tuple[str, list]:
    sql = f"""
        wrong_ranked AS (
            SELECT solution_id, problem_id, score,
                   row_number() OVER (PARTITION BY problem_id ORDER BY score DESC, solution_id) AS rn
            FROM pool WHERE is_wrong),
        wrong_pick AS (
            SELECT solution_id, problem_id, score, rn AS slot FROM wrong_ranked WHERE rn <= %s),
        taken AS (SELECT problem_id, count(*) AS n FROM wrong_pick GROUP BY problem_id),
        rest_ranked AS (
            SELECT p.solution_id, p.problem_id, p.score,
                   row_number() OVER (PARTITION BY p.problem_id
                                      ORDER BY p.score DESC, p.solution_id) AS rn
            FROM pool p
            WHERE NOT EXISTS (SELECT 1 FROM wrong_pick w WHERE w.solution_id = p.solution_id)),
        rest_pick AS (
            SELECT r.solution_id, r.score, coalesce(t.n, 0) + r.rn AS slot FROM rest_ranked r
            LEFT JOIN taken t ON t.problem_id = r.problem_id
            WHERE coalesce(t.n, 0) + r.rn <= %s)
        SELECT solution_id, score, reason, score AS key FROM (
            SELECT solution_id, score, slot, '{strategies.REASON_WRONG}' AS reason FROM wrong_pick
            UNION ALL
            SELECT solution_id, score, slot, '{strategies.REASON_REST}' FROM rest_pick) picked
        ORDER BY slot, score DESC, solution_id
        LIMIT %s"""
    return sql, [quota, per_problem, size]


def _sql_keyed(key_sql: str, reason: str, size: int, cap: int | None) -> tuple[str, list]:
    """One ranking key (ascending), an optional per-problem cap, then the first ``size``."""
    sql = f"""
        keyed AS (SELECT solution_id, problem_id, score, {key_sql} AS key FROM pool),
        ranked AS (
            SELECT solution_id, score, key,
                   {"row_number() OVER (PARTITION BY problem_id ORDER BY key, solution_id)" if cap is not None else "1"} AS rn
            FROM keyed)
        SELECT solution_id, score, '{reason}' AS reason, key FROM ranked
        WHERE {_cap_filter("rn", cap)}
        ORDER BY key, solution_id
        LIMIT %s"""
    return sql, [size]


UNIFORM_KEY_SQL = "md5(%s || ':' || solution_id::text) COLLATE \"C\""
MARGIN_SQL = """coalesce((SELECT min(abs((e ->> 0)::float8 - 0.5))
                          FROM jsonb_array_elements(step_probs) AS e), 0.5)"""


def select_from_pool(
    pool: PoolQuery, size: int, strategy: str, params: dict | None = None
) -> list[Pick]:
    """Run ``strategy`` over ``pool`` in the database; same result as ``strategies.select``."""
    params = dict(params or {})
    # The pure dispatcher validates names and values; an empty pool costs nothing.
    strategies.select([], max(size, 0), strategy, params)
    cap = params.get("per_problem_cap")
    key_params: list = []
    if strategy == "convincing_wrong_answer":
        share = params.get("wrong_share", strategies.DEFAULT_WRONG_SHARE)
        if params.get("scope", "global") == "global":
            body, tail = _sql_convincing_global(size, strategies.wrong_quota(size, share), cap)
        else:
            per_problem = params["per_problem"]
            n = per_problem if cap is None else min(per_problem, cap)
            quota = min(strategies.wrong_quota(per_problem, share), n)
            body, tail = _sql_convincing_per_problem(size, quota, n)
    elif strategy == "uniform":
        key_params = [str(params.get("seed", 0))]
        body, tail = _sql_keyed(UNIFORM_KEY_SQL, strategies.REASON_UNIFORM, size, cap)
    elif strategy == "uncertainty":
        body, tail = _sql_keyed(MARGIN_SQL, strategies.REASON_UNCERTAIN, size, cap)
    else:  # pragma: no cover - rejected by strategies.select above
        raise StrategyError(f"unknown strategy {strategy!r}")
    if strategy != "uniform" and not pool.scored:
        raise StrategyError(f"{strategy} needs a PRM version to score the pool")
    sql = f"WITH pool AS ({pool.sql}), {body}"
    with connection.cursor() as cursor:
        cursor.execute(sql, [*pool.params, *key_params, *tail])
        rows = cursor.fetchall()
    return [Pick(int(sid), score, reason, key) for sid, score, reason, key in rows]
