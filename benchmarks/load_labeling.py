"""Load test of the labeling loop against gunicorn, as production runs it.

    python benchmarks/load_labeling.py [--levels 50,200] [--seconds 20] [--cpu 300]

Creates (or recreates) the scratch database `bench_labeling` on the Postgres of DATABASE_URL,
migrates it, seeds labelers with API tokens and a queue of 4-step tasks, starts gunicorn
(`config.wsgi:application`, 4 workers x 4 threads as in docker-compose.yml, production settings,
127.0.0.1 only) and, in a separate process, K simulated labelers (one thread and one keep-alive
connection each, no think time) that loop: ping, claim, 2-3 draft saves, submit.
`GET /api/labeling/ping/` (authenticated, reads one row) is the baseline: the framework's floor
under the same load. Reports labelings/s, p50/p99 per request type, errors, and checks in the
database that no task was over-assigned and that every 201 the clients got is exactly one stored
labeling.

Server CPU per request (``--cpu N``, on by default): before the load levels, a second gunicorn
with one worker and one thread (gthread, as production) serves one labeler's strictly sequential
loop N times: ping, claim, one draft save, submit. The worker's CPU time (all its threads, from
/proc/<pid>/task/*/schedstat, nanoseconds) and that of its Postgres backend are read before and
after every request, so each request type gets its own CPU per request, in the same run as the
ping baseline. SQL statements per request are counted in-process (Django test client with
``CaptureQueriesContext``, same settings, same database) on the same loop.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "bench_labeling"
STEPS = 4


def _scratch_url() -> str:
    url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/stepwise")
    return urlunsplit(urlsplit(url)._replace(path=f"/{DB_NAME}"))


def _recreate_database(scratch_url: str) -> None:
    import psycopg

    admin = urlunsplit(urlsplit(scratch_url)._replace(path="/postgres", scheme="postgresql"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")


def _setup_django(scratch_url: str) -> None:
    os.environ["DATABASE_URL"] = scratch_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _seed(*, labelers: int, tasks: int, generation_number: int, prefix: str) -> list[str]:
    """K passed labelers with tokens and a generation of tasks; returns the tokens."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from labeling.models import Generation, Labeler, LabelingTask, Problem, Solution, Step

    User = get_user_model()
    users = User.objects.bulk_create(
        User(username=f"{prefix}-{i}", password="!") for i in range(labelers)
    )
    Labeler.objects.bulk_create(Labeler(user=u, screening_status="passed") for u in users)
    tokens = Token.objects.bulk_create(Token(user=u, key=secrets.token_hex(20)) for u in users)
    generation = Generation.objects.create(number=generation_number, state="active")
    problems = Problem.objects.bulk_create(
        Problem(text=f"{prefix} problem {i}: $x^2 = {i}$", reference_answer=str(i))
        for i in range(tasks)
    )
    solutions = Solution.objects.bulk_create(
        Solution(problem=p, final_answer="1", fingerprint=f"{prefix}-{p.pk}", num_steps=STEPS)
        for p in problems
    )
    Step.objects.bulk_create(
        Step(solution=s, position=i, text=f"step {i}: $a_{i} = {i}$")
        for s in solutions
        for i in range(STEPS)
    )
    LabelingTask.objects.bulk_create(
        LabelingTask(solution=s, generation=generation, labelings_required=2) for s in solutions
    )
    return [t.key for t in tokens]


# ---------------------------------------------------------------- load generator (own process)


def _labeler_loop(port, token, deadline, warmup_until, samples, lock, rng_seed):
    rng = random.Random(rng_seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    local: list[tuple[str, float, int, float]] = []
    receipts: list[int] = []

    def call(kind, method, path, body=None):
        nonlocal conn
        data = json.dumps(body).encode() if body is not None else None
        started = time.perf_counter()
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            payload, status = b"", 0
        now = time.perf_counter()
        local.append((kind, now - started, status, started))
        return status, payload

    while time.perf_counter() < deadline:
        call("ping", "GET", "/api/labeling/ping/")
        status, payload = call("claim", "POST", "/api/labeling/claim/")
        if status != 200:
            time.sleep(0.05)
            continue
        assignment = json.loads(payload)["assignment"]
        base = f"/api/labeling/assignments/{assignment['id']}"
        ratings = []
        for i in range(rng.choice([2, 3])):
            ratings.append(1)
            call("draft", "PUT", f"{base}/draft/", {"state": {"r": ratings}, "active_ms": 900 * i})
        steps = [{"position": i, "rating": 1, "flagged": False} for i in range(STEPS)]
        body = {"finish_reason": "solution", "reason": "", "total_time_ms": 5000, "steps": steps}
        status, payload = call("submit", "POST", f"{base}/submit/", body)
        if status == 201:
            receipts.append(json.loads(payload)["labeling_id"])
    conn.close()
    with lock:
        samples["requests"].extend(r for r in local if r[3] >= warmup_until)
        samples["all_requests"] += len(local)
        samples["receipts"].extend(receipts)
        samples["measured_submits"] += sum(
            1
            for kind, _l, status, start in local
            if kind == "submit" and status == 201 and start >= warmup_until
        )


def load_generator(port, tokens, seconds, warmup, queue):
    start = time.perf_counter()
    warmup_until = start + warmup
    deadline = warmup_until + seconds
    samples = {"requests": [], "receipts": [], "all_requests": 0, "measured_submits": 0}
    lock = threading.Lock()
    threads = [
        threading.Thread(
            target=_labeler_loop,
            args=(port, token, deadline, warmup_until, samples, lock, i),
            daemon=True,
        )
        for i, token in enumerate(tokens)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + warmup + 120)
    samples["measured_seconds"] = time.perf_counter() - warmup_until
    queue.put(samples)


# ---------------------------------------------------------------- server CPU per request


def _cpu_ns(pid: int) -> int | None:
    """CPU time of a process so far, all threads, in ns (None if it cannot be read)."""
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except (FileNotFoundError, ProcessLookupError):
                continue  # a thread that just ended
    except (FileNotFoundError, PermissionError):
        return None
    return total


def _worker_pid(master: int) -> int:
    """The one worker of a gunicorn master (its only child process)."""
    for _ in range(100):
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[1]) == master:
                return int(stat.parent.name)
        time.sleep(0.1)
    raise RuntimeError("no gunicorn worker found")


def _backend_pid(worker_pid_: int) -> int | None:
    """The Postgres backend serving the worker (its one persistent connection), if local."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
        pids = [row[0] for row in cursor.fetchall()]
    if len(pids) != 1 or _cpu_ns(pids[0]) is None:
        return None
    return pids[0]


def _cycle(call) -> None:
    """One labeler's request sequence: ping, claim, one draft save, submit."""
    call("ping", "GET", "/api/labeling/ping/")
    status, payload = call("claim", "POST", "/api/labeling/claim/")
    if status != 200:
        raise RuntimeError(f"claim answered {status}")
    base = f"/api/labeling/assignments/{json.loads(payload)['assignment']['id']}"
    call("draft", "PUT", f"{base}/draft/", {"state": {"r": [1, 1]}, "active_ms": 900})
    steps = [{"position": i, "rating": 1, "flagged": False} for i in range(STEPS)]
    body = {"finish_reason": "solution", "reason": "", "total_time_ms": 5000, "steps": steps}
    status, _ = call("submit", "POST", f"{base}/submit/", body)
    if status != 201:
        raise RuntimeError(f"submit answered {status}")


def _queries_per_request(token: str, cycles: int = 5) -> dict[str, float]:
    """SQL statements per request type, counted in-process on the same loop."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Token {token}", HTTP_HOST="127.0.0.1")
    counts: dict[str, list[int]] = {}

    def call(kind, method, path, body=None):
        with CaptureQueriesContext(connection) as captured:
            response = client.generic(
                method, path, json.dumps(body) if body is not None else "", "application/json"
            )
        counts.setdefault(kind, []).append(len(captured.captured_queries))
        return response.status_code, response.content

    for _ in range(cycles):
        _cycle(call)
    return {kind: statistics.mean(values) for kind, values in sorted(counts.items())}


def run_cpu(n: int, port: int, env: dict, number: int) -> dict:
    """Server CPU per request type: one gunicorn worker, one thread, one sequential client."""
    # Cycles rotate over 30 labelers, so each stays under the per-user throttle as a real
    # labeler does (and its throttle history, read and written on every request, stays short).
    tokens = _seed(labelers=31, tasks=n + 50, generation_number=number, prefix="cpu")
    cmd = [
        str(Path(sys.executable).parent / "gunicorn"),
        "config.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--threads",
        "1",
        "--worker-class",
        "gthread",
        "--log-level",
        "warning",
    ]
    server = _start_gunicorn(port, env, cmd)
    try:
        worker = _worker_pid(server.pid)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Content-Type": "application/json"}
        spent: dict[str, list[tuple[int, int]]] = {}
        backend: list[int | None] = [None]

        def call(kind, method, path, body=None):
            data = json.dumps(body).encode() if body is not None else None
            before = (_cpu_ns(worker), _cpu_ns(backend[0]) if backend[0] else 0)
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            after = (_cpu_ns(worker), _cpu_ns(backend[0]) if backend[0] else 0)
            spent.setdefault(kind, []).append((after[0] - before[0], after[1] - before[1]))
            return response.status, payload

        for i in range(20):  # warm-up: imports, connections, caches
            headers["Authorization"] = f"Token {tokens[i % 30]}"
            _cycle(call)
        backend[0] = _backend_pid(worker)
        spent.clear()
        for i in range(n):
            headers["Authorization"] = f"Token {tokens[i % 30]}"
            _cycle(call)
        conn.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    result: dict = {"requests_each": n, "worker_cpu_ms": {}, "postgres_cpu_ms": {}}
    for kind, values in spent.items():
        result["worker_cpu_ms"][kind] = {
            "mean": round(statistics.mean(v[0] for v in values) / 1e6, 2),
            "median": round(statistics.median(v[0] for v in values) / 1e6, 2),
        }
        if backend[0]:
            result["postgres_cpu_ms"][kind] = round(statistics.mean(v[1] for v in values) / 1e6, 2)
    ping = result["worker_cpu_ms"]["ping"]["mean"]
    result["x_ping"] = {
        kind: round(cpu["mean"] / ping, 2) for kind, cpu in result["worker_cpu_ms"].items()
    }
    result["queries"] = _queries_per_request(tokens[30])
    # Its leftover tasks must not feed the load levels, which start from fresh rounds.
    from labeling.models import Generation

    Generation.objects.filter(number=number).update(state="finished")
    return result


# ---------------------------------------------------------------- orchestration


def _percentile(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 1000) - 1]


def _start_gunicorn(port: int, env: dict, cmd: list[str] | None = None) -> subprocess.Popen:
    cmd = cmd or [
        str(Path(sys.executable).parent / "gunicorn"),
        "config.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "4",
        "--threads",
        "4",
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    for _ in range(300):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("gunicorn did not start")


def _integrity(prefix_receipts: list[int]) -> dict:
    from django.db import connection

    from labeling.models import Labeling

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(*) FROM (
              SELECT t.id FROM labeling_labelingtask t
              JOIN labeling_assignment a ON a.task_id = t.id
              WHERE a.state IN ('active', 'submitted')
              GROUP BY t.id, t.labelings_required HAVING count(*) > t.labelings_required
            ) over_assigned
            """
        )
        over_assigned = cursor.fetchone()[0]
    stored = set(Labeling.objects.filter(pk__in=prefix_receipts).values_list("pk", flat=True))
    return {
        "over_assigned_tasks": over_assigned,
        "client_receipts": len(prefix_receipts),
        "duplicate_receipts": len(prefix_receipts) - len(set(prefix_receipts)),
        "receipts_missing_in_db": len(set(prefix_receipts) - stored),
        "labelings_in_db": Labeling.objects.count(),
    }


def run_level(k: int, seconds: float, warmup: float, port: int, number: int) -> dict:
    from labeling.models import Labeling

    tokens = _seed(labelers=k, tasks=max(2000, k * 40), generation_number=number, prefix=f"k{k}")
    before = Labeling.objects.count()
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    generator = context.Process(target=load_generator, args=(port, tokens, seconds, warmup, queue))
    generator.start()
    samples = queue.get(timeout=seconds + warmup + 300)
    generator.join(timeout=30)
    integrity = _integrity(samples["receipts"])
    integrity["labelings_added"] = Labeling.objects.count() - before
    by_kind: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    for kind, latency, status, _start in samples["requests"]:
        by_kind.setdefault(kind, []).append(latency * 1000)
        expected = {"ping": {200}, "claim": {200, 204}, "draft": {200}, "submit": {201}}[kind]
        if status not in expected:
            errors[f"{kind}:{status}"] = errors.get(f"{kind}:{status}", 0) + 1
    latencies = {
        kind: {
            "n": len(values),
            "p50_ms": round(_percentile(values, 0.5), 1),
            "p99_ms": round(_percentile(values, 0.99), 1),
        }
        for kind, values in sorted(by_kind.items())
    }
    floor = latencies["ping"]
    for kind in latencies:
        latencies[kind]["p50_x_ping"] = round(latencies[kind]["p50_ms"] / floor["p50_ms"], 2)
        latencies[kind]["p99_x_ping"] = round(latencies[kind]["p99_ms"] / floor["p99_ms"], 2)
    return {
        "K": k,
        "measured_seconds": round(samples["measured_seconds"], 1),
        "labelings_per_s": round(samples["measured_submits"] / samples["measured_seconds"], 1),
        "latency": latencies,
        "errors": errors,
        "integrity": integrity,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="50,200", help="comma-separated K values")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per level")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--cpu",
        type=int,
        default=300,
        help="sequential loops for the server-CPU measure (0: skip it)",
    )
    args = parser.parse_args()

    scratch = _scratch_url()
    _recreate_database(scratch)
    env = {
        **os.environ,
        "DATABASE_URL": scratch,
        "STEPWISE_PRODUCTION": "1",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(60),
        "DJANGO_SECURE_SSL_REDIRECT": "0",  # plain HTTP on loopback; TLS ends at a proxy
        "CACHE_KEY_PREFIX": f"bench-labeling-{secrets.token_hex(4)}",
        "LOG_LEVEL": "WARNING",
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    os.environ.update({k: env[k] for k in ("CACHE_KEY_PREFIX", "LOG_LEVEL")})
    _setup_django(scratch)
    print(f"load average before: {os.getloadavg()} on {os.cpu_count()} CPUs", flush=True)
    cpu = None
    if args.cpu:
        cpu = run_cpu(args.cpu, args.port + 1, env, number=99)
        print(json.dumps({"server_cpu": cpu}, indent=1), flush=True)
    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    server = _start_gunicorn(args.port, env) if levels else None
    results = []
    try:
        for i, k in enumerate(levels):
            result = run_level(k, args.seconds, args.warmup, args.port, number=100 + i)
            results.append(result)
            print(json.dumps(result, indent=1), flush=True)
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
    if cpu:
        print(
            "\n| request | worker CPU ms (mean) | median | x ping | Postgres CPU ms | SQL statements |"
        )
        print("|---|---|---|---|---|---|")
        for kind, ms in cpu["worker_cpu_ms"].items():
            print(
                f"| {kind} | {ms['mean']} | {ms['median']} | {cpu['x_ping'][kind]} "
                f"| {cpu['postgres_cpu_ms'].get(kind, '-')} | {cpu['queries'].get(kind)} |"
            )
    print("\n| K | labelings/s | request | n | p50 ms | p99 ms | p99 / ping p99 |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        for kind, lat in r["latency"].items():
            print(
                f"| {r['K']} | {r['labelings_per_s']} | {kind} | {lat['n']} | {lat['p50_ms']} "
                f"| {lat['p99_ms']} | {lat['p99_x_ping']} |"
            )
    for r in results:
        print(f"K={r['K']}: errors {r['errors'] or 'none'}; integrity {r['integrity']}")
    print(f"load average after: {os.getloadavg()}")
    if args.json:
        args.json.write_text(json.dumps({"server_cpu": cpu, "levels": results}, indent=1))
    bad = any(
        r["integrity"]["over_assigned_tasks"]
        or r["integrity"]["duplicate_receipts"]
        or r["integrity"]["receipts_missing_in_db"]
        for r in results
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
