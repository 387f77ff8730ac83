"""Round selection in SQL at 100,000 and 1,000,000 scored candidates, against a plain top-k.

    python benchmarks/bench_selection.py [--sizes 100000 1000000] [--batch 1000] [--repeat 3]

Creates a scratch database (``<DATABASE_URL's db>_bench_selection``, dropped at the end) holding
just the columns and indexes the candidate pool reads (solutions, scores, labelings, tasks), fills
it with ``generate_series`` (100 solutions per problem, 40% wrong answers, 5% already labeled,
5% already queued, 4 steps of probabilities each), then times, best of ``--repeat``:

- baseline: ``SELECT solution_id FROM scores WHERE prm_version_id = 1 ORDER BY score DESC LIMIT k``
  (the same score table, its (prm_version, -score) index),
- pool top-k: the same top-k through the candidate pool's filters, and pool scan: ``count(*)``
  of the whole pool (the floor for a strategy that must look at every candidate),
- each strategy through ``active_learning.selection.select_from_pool`` on the real
  ``candidate_pool`` query (filters on labeled / queued solutions included).

Prints a Markdown table of seconds and ratios to the baseline, and the growth from the smallest to
the largest size.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SCHEMA = """
DROP TABLE IF EXISTS labeling_labeling, labeling_labelingtask, training_solutionscore,
                     labeling_solution;
CREATE TABLE labeling_solution (
    id bigint PRIMARY KEY, problem_id bigint NOT NULL, grade varchar(16) NOT NULL);
CREATE TABLE training_solutionscore (
    id bigserial PRIMARY KEY, prm_version_id bigint NOT NULL, solution_id bigint NOT NULL,
    score float8 NOT NULL, step_probabilities jsonb NOT NULL);
CREATE TABLE labeling_labeling (id bigserial PRIMARY KEY, solution_id bigint NOT NULL);
CREATE TABLE labeling_labelingtask (
    id bigserial PRIMARY KEY, solution_id bigint NOT NULL, state varchar(16) NOT NULL);
"""

FILL = """
INSERT INTO labeling_solution
SELECT i, i / 100, CASE WHEN random() < 0.4 THEN 'wrong' ELSE 'correct' END
FROM generate_series(1, %(n)s) AS i;
INSERT INTO training_solutionscore (prm_version_id, solution_id, score, step_probabilities)
SELECT 1, i, round(random()::numeric, 4)::float8,
       jsonb_build_array(jsonb_build_array(random(), 0, 0.5), jsonb_build_array(random(), 0, 0.5),
                         jsonb_build_array(random(), 0, 0.5), jsonb_build_array(random(), 0, 0.5))
FROM generate_series(1, %(n)s) AS i;
INSERT INTO labeling_labeling (solution_id) SELECT i FROM generate_series(1, %(n)s, 20) AS i;
INSERT INTO labeling_labelingtask (solution_id, state)
SELECT i, 'open' FROM generate_series(2, %(n)s, 20) AS i;
-- The indexes Django creates for these models (foreign keys, Meta.indexes).
CREATE INDEX ON labeling_solution (problem_id, grade);
CREATE INDEX ON training_solutionscore (prm_version_id, score DESC);
CREATE INDEX ON training_solutionscore (solution_id);
CREATE INDEX ON labeling_labeling (solution_id);
CREATE INDEX ON labeling_labelingtask (solution_id);
"""

CASES = [
    ("convincing_wrong_answer", {}),
    ("convincing_wrong_answer", {"per_problem_cap": 4}),
    ("convincing_wrong_answer", {"scope": "per_problem", "per_problem": 4}),
    ("uniform", {"seed": 1}),
    ("uncertainty", {"per_problem_cap": 4}),
]


POOL_BASELINE = "pool top-k: candidate filters + ORDER BY score LIMIT k"
POOL_SCAN = "pool scan: count(*) over the candidate pool"


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import psycopg

    url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/stepwise")
    parts = urlsplit(url)
    bench_db = parts.path.lstrip("/") + "_bench_selection"
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{bench_db}"')
        admin.execute(f'CREATE DATABASE "{bench_db}"')
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path="/" + bench_db))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.db import connection

    from active_learning import selection

    rows = []
    try:
        for n in args.sizes:
            with connection.cursor() as cur:
                start = time.perf_counter()
                cur.execute(SCHEMA)
                cur.execute(FILL, {"n": n})
                cur.execute("VACUUM ANALYZE")
                fill_s = time.perf_counter() - start

            def baseline() -> None:
                with connection.cursor() as cur:
                    cur.execute(
                        "SELECT solution_id FROM training_solutionscore WHERE prm_version_id = 1"
                        " ORDER BY score DESC LIMIT %s",
                        [args.batch],
                    )
                    assert len(cur.fetchall()) == args.batch

            base = best_of(args.repeat, baseline)
            rows.append((n, "baseline: ORDER BY score LIMIT k", base, fill_s))
            pool = selection.candidate_pool(prm_version_id=1)

            def pool_top_k(pool=pool) -> None:
                with connection.cursor() as cur:
                    cur.execute(
                        f"SELECT solution_id FROM ({pool.sql}) pool ORDER BY score DESC LIMIT %s",
                        [*pool.params, args.batch],
                    )
                    assert len(cur.fetchall()) == args.batch

            rows.append((n, POOL_BASELINE, best_of(args.repeat, pool_top_k), fill_s))

            def pool_scan(pool=pool) -> None:
                with connection.cursor() as cur:
                    cur.execute(f"SELECT count(*) FROM ({pool.sql}) pool", pool.params)
                    cur.fetchone()

            # The floor for strategies that must look at every candidate.
            rows.append((n, POOL_SCAN, best_of(args.repeat, pool_scan), fill_s))
            for strategy, params in CASES:

                def run(strategy=strategy, params=params, pool=pool) -> None:
                    picks = selection.select_from_pool(pool, args.batch, strategy, params)
                    assert 0 < len(picks) <= args.batch, len(picks)

                label = strategy + (f" {params}" if params else "")
                rows.append((n, label, best_of(args.repeat, run), fill_s))
                print(f"  n={n:>9,} {label}: {rows[-1][2]:.3f} s", file=sys.stderr, flush=True)
    finally:
        connection.close()
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{bench_db}"')

    baselines = {n: t for n, label, t, _ in rows if label.startswith("baseline")}
    pool_baselines = {n: t for n, label, t, _ in rows if label == POOL_BASELINE}
    print(f"\nbatch k = {args.batch}, best of {args.repeat}\n")
    scans = {n: t for n, label, t, _ in rows if label == POOL_SCAN}
    print("| candidates | query | seconds | x baseline | x pool top-k | x pool scan |")
    print("|---:|---|---:|---:|---:|---:|")
    for n, label, t, _ in rows:
        print(
            f"| {n:,} | {label} | {t:.3f} | {t / baselines[n]:.1f} "
            f"| {t / pool_baselines[n]:.2f} | {t / scans[n]:.2f} |"
        )
    for n, _, _, fill_s in rows[:: len(rows) // len(args.sizes)]:
        print(f"\nfilled {n:,} candidates in {fill_s:.1f} s")
    if len(args.sizes) > 1:
        lo, hi = min(args.sizes), max(args.sizes)
        print(f"\ngrowth from {lo:,} to {hi:,} candidates ({hi / lo:.0f}x more):\n")
        by = {(n, label): t for n, label, t, _ in rows}
        for _, label, _, _ in (r for r in rows if r[0] == lo):
            print(f"- {label}: {by[(hi, label)] / by[(lo, label)]:.1f}x")


if __name__ == "__main__":
    main()
