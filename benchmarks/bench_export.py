"""PRM800K export throughput against ``COPY (SELECT ... json ...) TO STDOUT``, and peak memory.

    python benchmarks/bench_import.py --input var/bench/prm800k_10000.jsonl --database bench_stepwise_10k
    python benchmarks/bench_export.py --database bench_stepwise_10k --compare var/bench/prm800k_10000.jsonl

Runs on a database loaded by bench_import.py. The three runs take turns ``--repeat`` times
(default 3) and each keeps its best time. Each run is a child process writing the whole
export to a file under var/bench/ and reporting its wall time and peak RSS (``ru_maxrss``):

- baseline: ``COPY (<the exporter's own SELECT>) TO STDOUT`` through psycopg straight to the
  file: Postgres builds the JSON text and streams it, nothing is done per line in Python.
- baseline 2: ``COPY (SELECT json_build_object(... json_agg(...) ...)) TO STDOUT``, the same
  document built with Postgres' native JSON constructors (keys in order, ``" : "`` separators).
- ``export_prm800k``: ``labeling.exports.iter_prm800k_lines`` (named cursor, batches) written
  by the management command's writer, as ``manage.py export_prm800k`` does.

Wall time on a shared machine is noisy, so each run also reports CPU seconds: its own and
(when Postgres runs on this machine) its Postgres backend's, read from /proc; the CPU ratio
compares their sum with the baseline's.

With ``--compare FILE`` (the generated input) it then checks, outside the timing, that every
exported line equals an input line as JSON with the same key order (as multisets of canonical
``json.dumps`` texts, so the check holds flat memory as well).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_db import ROOT, cpu_seconds, database_url, peak_rss_mib, run_child, setup_django

OUT_DIR = ROOT / "var" / "bench"


def _native_json_query() -> str:
    """The PRM800K line built with json_build_object / json_agg (phase 2 shape only)."""
    return """
SELECT json_build_object(
  'labeler', COALESCE(lr.external_id, lr.pseudonym::text),
  'timestamp', to_char(l.timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
  'generation', g.number,
  'is_quality_control_question', l.is_quality_control,
  'is_initial_screening_question', l.is_screening,
  'question', json_build_object(
    'problem', p.text,
    'ground_truth_solution', COALESCE(l.ground_truth_solution_override, p.reference_solution),
    'ground_truth_answer', COALESCE(l.ground_truth_answer_override, p.reference_answer),
    'pre_generated_steps', (SELECT json_agg(st.text ORDER BY st.position)
                            FROM labeling_step st WHERE st.solution_id = s.id),
    'pre_generated_answer', s.final_answer,
    'pre_generated_verifier_score', s.selection_score),
  'label', json_build_object(
    'steps', (SELECT json_agg(json_build_object(
                'completions', CASE WHEN ls.completions_null THEN NULL ELSE
                  (SELECT json_agg(json_build_object('text', c.text, 'rating', c.rating,
                                                     'flagged', c.flagged) ORDER BY c.position)
                   FROM labeling_labeledcompletion c WHERE c.labeled_step_id = ls.id) END,
                'human_completion', CASE WHEN ls.has_human_completion THEN json_build_object(
                  'text', ls.human_completion_text, 'rating', ls.human_completion_rating,
                  'source', ls.human_completion_source, 'flagged', ls.human_completion_flagged)
                  END,
                'chosen_completion', ls.chosen_completion) ORDER BY ls.position)
              FROM labeling_labeledstep ls WHERE ls.labeling_id = l.id),
    'total_time', l.total_time_ms,
    'finish_reason', l.finish_reason))::text
FROM labeling_labeling l
JOIN labeling_solution s ON s.id = l.solution_id
JOIN labeling_problem p ON p.id = s.problem_id
JOIN labeling_labeler lr ON lr.id = l.labeler_id
JOIN auth_user u ON u.id = lr.user_id
LEFT JOIN active_learning_generation g ON g.id = l.generation_id
ORDER BY l.id"""


def _child(mode: str, output: str) -> None:
    setup_django()
    from django.db import connection

    from labeling.exports import ExportFilter, iter_prm800k_lines, prm800k_query
    from labeling.management.commands.export_prm800k import write_lines

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    client_cpu, server_cpu = cpu_seconds(), cpu_seconds(backend)
    started = time.perf_counter()
    if mode == "export":
        write_lines(iter_prm800k_lines(), output=output, total=None, progress=False, unit="line")
    else:
        sql = prm800k_query(ExportFilter())[0] if mode == "copy" else _native_json_query()
        with connection.cursor() as cursor, open(output, "wb") as out:
            with cursor.copy(f"COPY ({sql}) TO STDOUT") as copy:
                for chunk in copy:
                    out.write(chunk)
    seconds = time.perf_counter() - started
    client_cpu = cpu_seconds() - client_cpu
    server_after = cpu_seconds(backend)
    server_cpu = None if server_after is None else server_after - server_cpu
    with open(output, "rb") as check:
        lines = sum(1 for _ in check)
    report = {"seconds": seconds, "lines": lines, "peak_rss_mib": peak_rss_mib()}
    print(json.dumps({**report, "client_cpu": client_cpu, "server_cpu": server_cpu}))


def _digests(path: Path) -> Counter:
    with path.open("rb") as lines:
        return Counter(
            hashlib.sha1(json.dumps(json.loads(line)).encode()).digest() for line in lines
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", default="bench_stepwise")
    parser.add_argument("--compare", type=Path, help="the generated file that was imported")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; best time is kept")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    url = database_url(args.database)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    runs: dict[str, dict] = {}
    # The machine is shared: the modes take turns, and each keeps its best time.
    for _ in range(args.repeat):
        for mode in ("copy", "native", "export"):
            output = OUT_DIR / f"export_{args.database}_{mode}.jsonl"
            run = run_child([str(Path(__file__)), "--child", mode, str(output)], url)
            best = runs.setdefault(mode, {**run, "output": output})
            for key in ("seconds", "client_cpu", "server_cpu"):
                if run[key] is not None:
                    best[key] = min(best[key], run[key])
            best["peak_rss_mib"] = max(best["peak_rss_mib"], run["peak_rss_mib"])
    base = runs["copy"]["seconds"]
    lines = runs["export"]["lines"]
    print(f"\ndatabase: {args.database} ({lines} labelings), best of {args.repeat}")
    print(
        "\n| run | wall s | lines/s | wall ratio | client CPU s | Postgres CPU s "
        "| CPU ratio | peak RSS MiB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    names = {
        "copy": "COPY (exporter's SELECT) TO STDOUT",
        "native": "COPY (json_build_object/json_agg) TO STDOUT",
        "export": "export_prm800k (named cursor)",
    }

    def cpu(run: dict) -> float:
        return run["client_cpu"] + (run["server_cpu"] or 0.0)

    for mode, run in runs.items():
        server = "n/a" if run["server_cpu"] is None else f"{run['server_cpu']:.1f}"
        print(
            f"| {names[mode]} | {run['seconds']:.1f} | {run['lines'] / run['seconds']:,.0f} | "
            f"{run['seconds'] / base:.2f} | {run['client_cpu']:.1f} | {server} | "
            f"{cpu(run) / cpu(runs['copy']):.2f} | {run['peak_rss_mib']:.0f} |"
        )
    if args.compare:
        same = _digests(runs["export"]["output"]) == _digests(args.compare)
        print(f"\nexport equals {args.compare} as JSON, key order included: {same}")
        if not same:
            sys.exit(1)
    for run in runs.values():
        run["output"].unlink()


if __name__ == "__main__":
    main()
