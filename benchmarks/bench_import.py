"""PRM800K import throughput against Postgres ``COPY FROM`` of the same rows, and peak memory.

    python benchmarks/make_prm800k.py --lines 100000
    python benchmarks/bench_import.py --input var/bench/prm800k_100000.jsonl

1. Recreates the scratch database ``--database`` (default ``bench_stepwise``) and migrates it.
2. Imports the file with ``labeling.imports.import_prm800k`` in a child process, which reports
   its own wall time and peak RSS (``ru_maxrss``).
3. Baseline: dumps every table the import wrote (``COPY ... TO``), empties them, and loads the
   very same rows back with ``COPY ... FROM`` (text format) in one transaction, indexes,
   constraints and the deferred foreign-key checks at commit included. That is the database's
   own ingest limit for exactly the normalized rows the importer produced: no JSON parsing, no
   validation, no id allocation, no dedupe lookups.

Prints lines/s of both and their ratio, and CPU seconds (the importer's own and its Postgres
backend's, read from /proc when the server is local; the baseline's backend) because wall time
on a shared machine is noisy. The database is left loaded for bench_export.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_db import (
    ROOT,
    conninfo,
    cpu_seconds,
    peak_rss_mib,
    recreate_database,
    run_child,
    setup_django,
)


def _child_import(path: str) -> None:
    setup_django()
    from django.db import connection

    from labeling.imports import import_prm800k

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    client_cpu, server_cpu = cpu_seconds(), cpu_seconds(backend)
    started = time.perf_counter()
    result = import_prm800k(path)
    seconds = time.perf_counter() - started
    client_cpu = cpu_seconds() - client_cpu
    server_after = cpu_seconds(backend)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "lines": result.lines,
                "created": result.created,
                "peak_rss_mib": peak_rss_mib(),
                "client_cpu": client_cpu,
                "server_cpu": None if server_after is None else server_after - server_cpu,
            }
        )
    )


def _row_counts(conn: psycopg.Connection) -> dict[str, int]:
    tables = [
        row[0]
        for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        )
    ]
    return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}


def _copy_baseline(url: str, tables: list[str], dump_dir: Path) -> tuple[float, float | None]:
    """Dump ``tables``, empty them, then time loading the same rows back with COPY FROM."""
    dump_dir.mkdir(parents=True, exist_ok=True)
    with psycopg.connect(conninfo(url)) as conn:
        for table in tables:
            with (dump_dir / f"{table}.copy").open("wb") as out:
                with conn.cursor().copy(f'COPY "{table}" TO STDOUT') as copy:
                    for chunk in copy:
                        out.write(chunk)
        conn.commit()
        quoted = ", ".join(f'"{t}"' for t in tables)
        conn.execute(f"TRUNCATE {quoted} CASCADE")
        conn.commit()
        conn.execute("CHECKPOINT")
        conn.commit()
        backend = conn.info.backend_pid
        server_cpu = cpu_seconds(backend)
        started = time.perf_counter()
        with conn.transaction():
            for table in tables:
                with (dump_dir / f"{table}.copy").open("rb") as source:
                    with conn.cursor().copy(f'COPY "{table}" FROM STDIN') as copy:
                        while chunk := source.read(1 << 20):
                            copy.write(chunk)
        seconds = time.perf_counter() - started
        server_after = cpu_seconds(backend)
    for table in tables:
        (dump_dir / f"{table}.copy").unlink()
    return seconds, None if server_after is None else server_after - server_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", type=Path, required=False)
    parser.add_argument("--database", default="bench_stepwise")
    parser.add_argument("--child-import", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_import:
        _child_import(args.child_import)
        return
    if args.input is None or not args.input.exists():
        parser.error("--input: give a file made by benchmarks/make_prm800k.py")
    url = recreate_database(args.database)
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        before = _row_counts(conn)
    report = run_child([str(Path(__file__)), "--child-import", str(args.input.resolve())], url)
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        after = _row_counts(conn)
        conn.execute("VACUUM ANALYZE")
    written = [t for t in after if after[t] > before.get(t, 0)]
    copy_seconds, copy_cpu = _copy_baseline(url, written, ROOT / "var" / "bench" / "copy")
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        assert _row_counts(conn) == after, "the COPY baseline did not restore the same rows"
        conn.execute("VACUUM ANALYZE")
    lines = report["lines"]
    rows = sum(after[t] - before.get(t, 0) for t in written)
    import_rate = lines / report["seconds"]
    copy_rate = lines / copy_seconds
    print(f"\nfile: {args.input} ({args.input.stat().st_size / 2**20:.0f} MiB, {lines} lines)")
    print(f"rows written: {rows} in {len(written)} tables: " + ", ".join(
        f"{t}={after[t] - before.get(t, 0)}" for t in written))  # fmt: skip
    import_cpu = report["client_cpu"] + (report["server_cpu"] or 0.0)
    server = "n/a" if report["server_cpu"] is None else f"{report['server_cpu']:.1f}"
    print(
        "\n| run | wall s | lines/s | wall ratio | client CPU s | Postgres CPU s | CPU ratio "
        "| peak RSS MiB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| COPY FROM (same rows) | {copy_seconds:.1f} | {copy_rate:,.0f} | 1.00 | - | "
        f"{'n/a' if copy_cpu is None else f'{copy_cpu:.1f}'} | 1.00 | - |"
    )
    cpu_ratio = "n/a" if not copy_cpu else f"{import_cpu / copy_cpu:.2f}"
    print(
        f"| import_prm800k | {report['seconds']:.1f} | {import_rate:,.0f} | "
        f"{report['seconds'] / copy_seconds:.2f} | {report['client_cpu']:.1f} | {server} | "
        f"{cpu_ratio} | {report['peak_rss_mib']:.0f} |"
    )


if __name__ == "__main__":
    main()
