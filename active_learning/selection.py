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
from dataclasses import dataclass, field

from django.db import connection, transaction

from active_learning import strategies
from active_learning.strategies import Pick, StrategyError
from labeling.models import Labeling, LabelingTask, Solution
from training.models import SolutionScore


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


# Ranking keys: the pure strategies' keys, as SQL over a pool row.
SCORE_KEY = "score"
UNIFORM_KEY = "md5(%s || ':' || solution_id::text) COLLATE \"C\""
MARGIN_KEY = """coalesce((SELECT min(abs((e ->> 0)::float8 - 0.5))
                          FROM jsonb_array_elements(step_probs) AS e), 0.5)"""


@dataclass
class _Ranking:
    """A greedy pass: walk ``where`` rows in key order, skipping problems that reached the cap."""

    key_sql: str
    key_params: list
    descending: bool
    where_sql: str = "TRUE"
    where_params: list = field(default_factory=list)

    @property
    def order(self) -> str:
        return f"key {'DESC' if self.descending else 'ASC'}, solution_id"


def _greedy_pick(
    cursor,
    pool: PoolQuery,
    ranking: _Ranking,
    limit: int,
    cap: int | None,
    taken: dict[int, int],
) -> list[tuple[int, int, float | None, object]]:
    """The first ``limit`` rows of ``ranking`` such that no problem exceeds ``cap`` picks
    (counting ``taken``, the picks it already has). Returns (solution, problem, score, key).

    Greedy acceptance of a row depends only on the rows ranked before it, so the answer over the
    first N rows of the order is exact whenever it already holds ``limit`` picks (or the pool has
    no more rows). We try N = 4 * limit and grow it 8x at a time: the top-N scan can walk the
    (prm_version, -score) index or keep a bounded heap, and the per-problem window function runs
    over N rows instead of the whole pool.
    """
    if limit <= 0:
        return []
    select = f"""WITH pool AS NOT MATERIALIZED ({pool.sql})
        SELECT solution_id, problem_id, score, {ranking.key_sql} AS key FROM pool
        WHERE {ranking.where_sql}"""
    params = [*pool.params, *ranking.key_params, *ranking.where_params]
    if cap is None:
        cursor.execute(f"{select} ORDER BY {ranking.order} LIMIT %s", [*params, limit])
        return cursor.fetchall()
    problems = list(taken)
    counts = [taken[p] for p in problems]
    window = 4 * limit
    while True:
        cursor.execute(
            f"""WITH prefix AS ({select} ORDER BY {ranking.order} LIMIT %s),
            ranked AS (
                SELECT p.*, coalesce(t.n, 0) + row_number() OVER (
                    PARTITION BY p.problem_id ORDER BY {ranking.order}) AS used
                FROM prefix p
                LEFT JOIN unnest(%s::bigint[], %s::bigint[]) AS t (problem_id, n)
                    ON t.problem_id = p.problem_id)
            -- One row even when nothing fits, to learn how many rows the prefix had.
            SELECT picked.solution_id, picked.problem_id, picked.score, picked.key, size.n
            FROM (SELECT count(*) AS n FROM prefix) AS size
            LEFT JOIN LATERAL (
                SELECT * FROM ranked WHERE used <= %s ORDER BY {ranking.order} LIMIT %s
            ) AS picked ON TRUE
            ORDER BY {ranking.order}""",
            [*params, window, problems, counts, cap, limit],
        )
        rows = [row for row in cursor.fetchall()]
        scanned = rows[0][4]
        rows = [row[:4] for row in rows if row[0] is not None]
        if len(rows) >= limit or scanned < window:
            return rows
        window *= 8


def _convincing_global(cursor, pool, size, share, cap) -> list[Pick]:
    wrong = _greedy_pick(
        cursor,
        pool,
        _Ranking(SCORE_KEY, [], True, "is_wrong"),
        strategies.wrong_quota(size, share),
        cap,
        {},
    )
    taken: dict[int, int] = {}
    for _, problem, _, _ in wrong:
        taken[problem] = taken.get(problem, 0) + 1
    rest = _greedy_pick(
        cursor,
        pool,
        _Ranking(SCORE_KEY, [], True, "solution_id <> ALL(%s::bigint[])", [[r[0] for r in wrong]]),
        size - len(wrong),
        cap,
        taken,
    )
    return [Pick(int(r[0]), r[2], strategies.REASON_WRONG, r[3]) for r in wrong] + [
        Pick(int(r[0]), r[2], strategies.REASON_REST, r[3]) for r in rest
    ]


def _convincing_per_problem(cursor, pool, size, quota, per_problem) -> list[Pick]:
    """Every problem contributes, so the whole pool is ranked, in one sort.

    One window ordered by (problem, score desc, id) gives each row its rank in its problem and
    its rank among the problem's wrong answers. Only two kinds of rows can be picked: wrong
    answers ranked within ``quota`` among their problem's wrong answers, and rows ranked within
    ``per_problem`` overall (a rest pick's rank among the unpicked rows plus the problem's wrong
    picks is at most ``per_problem``, and that sum bounds its overall rank). The exact two-part
    rule then runs on those few rows only.
    """
    cursor.execute(
        f"""WITH ranked AS (
            SELECT solution_id, problem_id, score, is_wrong,
                   row_number() OVER w AS rn,
                   count(*) FILTER (WHERE is_wrong) OVER w AS wrong_rn
            FROM (SELECT solution_id, problem_id, score, is_wrong FROM ({pool.sql}) p0) pool
            WINDOW w AS (PARTITION BY problem_id ORDER BY score DESC, solution_id)),
        near AS MATERIALIZED (
            SELECT solution_id, problem_id, score, is_wrong AND wrong_rn <= %s AS wrong_pick,
                   wrong_rn
            FROM ranked WHERE rn <= %s OR (is_wrong AND wrong_rn <= %s)),
        taken AS (SELECT problem_id, count(*) AS n FROM near WHERE wrong_pick GROUP BY problem_id),
        rest_ranked AS (
            SELECT solution_id, problem_id, score,
                   row_number() OVER (PARTITION BY problem_id ORDER BY score DESC, solution_id) AS rn
            FROM near WHERE NOT wrong_pick),
        rest_pick AS (
            SELECT r.solution_id, r.score, coalesce(t.n, 0) + r.rn AS slot FROM rest_ranked r
            LEFT JOIN taken t ON t.problem_id = r.problem_id
            WHERE coalesce(t.n, 0) + r.rn <= %s)
        SELECT solution_id, score, reason FROM (
            SELECT solution_id, score, wrong_rn AS slot, '{strategies.REASON_WRONG}' AS reason
            FROM near WHERE wrong_pick
            UNION ALL
            SELECT solution_id, score, slot, '{strategies.REASON_REST}' FROM rest_pick) picked
        ORDER BY slot, score DESC, solution_id
        LIMIT %s""",
        # In order of appearance: pool, quota, n, quota, n, size.
        [*pool.params, quota, per_problem, quota, per_problem, size],
    )
    return [Pick(int(sid), score, reason, score) for sid, score, reason in cursor.fetchall()]


def select_from_pool(
    pool: PoolQuery, size: int, strategy: str, params: dict | None = None
) -> list[Pick]:
    """Run ``strategy`` over ``pool`` in the database; same result as ``strategies.select``."""
    params = dict(params or {})
    # The pure dispatcher validates names and values; an empty pool costs nothing.
    strategies.select([], max(size, 0), strategy, params)
    if strategy != "uniform" and not pool.scored:
        raise StrategyError(f"{strategy} needs a PRM version to score the pool")
    cap = params.get("per_problem_cap")
    # One transaction, so a caller's locks cover it. Each statement is exact on its own (the
    # rest part excludes the wrong part's ids), so no wider isolation is needed.
    with transaction.atomic(), connection.cursor() as cursor:
        if strategy == "convincing_wrong_answer":
            share = params.get("wrong_share", strategies.DEFAULT_WRONG_SHARE)
            if params.get("scope", "global") == "global":
                return _convincing_global(cursor, pool, size, share, cap)
            per_problem = params["per_problem"]
            n = per_problem if cap is None else min(per_problem, cap)
            quota = min(strategies.wrong_quota(per_problem, share), n)
            return _convincing_per_problem(cursor, pool, size, quota, n)
        if strategy == "uniform":
            ranking = _Ranking(UNIFORM_KEY, [str(params.get("seed", 0))], False)
            reason = strategies.REASON_UNIFORM
        else:
            ranking = _Ranking(MARGIN_KEY, [], False)
            reason = strategies.REASON_UNCERTAIN
        rows = _greedy_pick(cursor, pool, ranking, size, cap, {})
    return [Pick(int(sid), score, reason, key) for sid, _, score, key in rows]
