"""Phase 1: the wait from a labeler's choice to the next candidates, against one generator call.

    python benchmarks/bench_interactive.py [--trials 4] [--k 4] [--max-new-tokens 48]
        [--think 15] [--threads 1] [--backends local,openai]

A scratch database (stepwise_bench_interactive), a phase-1 round over the first MATH500
problems, K candidates per step, SmolLM2-135M-Instruct: on the CPU through the local backend
(var/models/smollm2-135m-instruct), and through the OpenAI-compatible backend against
llama-cpp-python's server on SmolLM2's GGUF (`completions` endpoint). Each trial claims a fresh
problem (the first candidates are sampled then), and measures through the real API (Django's
test client in this process, so database and serialization count; the browser's render does
not) the time of the `step/` request that chooses a candidate and answers with the next
candidates:

  * no-prefetch: the choice arrives with nothing sampled ahead; the request samples;
  * prefetch-hit: as the page does, `prefetch/` for the candidate rated best is sent first (in
    its own thread, like the browser's second request), the labeler "rates" for --think seconds,
    then chooses that candidate;
  * prefetch-miss: the same, but the labeler chooses another candidate;
  * baseline (in every trial): one plain backend call for the candidates the labeler then
    sees, same prefix (and the same blank line after it, when the round learned that the model
    wants one) and same seeds, K one-line samples in one `sample` call: the least any design
    that samples on the choice waits.

Ratios are per trial (mode / baseline of that trial), median over trials.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._bench_db import recreate_database  # noqa: E402

DB_NAME = "stepwise_bench_interactive"
MATH500 = ROOT.parent / "shared" / "data" / "math500.jsonl"
MODES = ("no-prefetch", "prefetch-hit", "prefetch-miss")


def setup(url: str, threads: int) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["STEPWISE_TORCH_THREADS"] = str(threads)
    import django

    django.setup()
    import torch

    torch.set_num_threads(threads)


def make_round(generator: str, problems: int, k: int, tokens: int):
    from django.contrib.auth import get_user_model

    from labeling.models import Labeler, Problem
    from training.phase1.services import phase1_round_create

    ids = []
    for line in MATH500.read_text().splitlines()[:problems]:
        row = json.loads(line)
        problem, _ = Problem.objects.get_or_create(
            text=row["problem"], defaults={"reference_answer": row["answer"]}
        )
        ids.append(problem.pk)
    user = get_user_model().objects.create_user(username=f"bench-{generator}-{time.time_ns()}")
    labeler = Labeler.objects.create(user=user, screening_status="passed")
    phase1_round_create(
        problem_ids=ids, generator=generator, k=k, max_new_tokens=tokens, temperature=0.7
    )
    return user, labeler


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def trial(client, side_client, mode: str, think: float) -> dict:
    from labeling.models import Assignment
    from training.generator import SampleRequest
    from training.generator.steps import solution_prefix
    from training.phase1 import sampling
    from training.phase1.services import round_params

    claimed = client.post("/api/labeling/phase1/claim/").json()["assignment"]
    aid, current = claimed["id"], claimed["current"]
    candidates = [c for c in current["candidates"] if not c["ends_solution"]]
    if len(candidates) < 2:
        raise RuntimeError("fewer than two non-final candidates: use another problem")
    k = len(current["candidates"])
    ratings = [1 if c["index"] == candidates[0]["index"] else 0 for c in current["candidates"]]
    likely, other = candidates[0]["index"], candidates[1]["index"]
    chosen = other if mode == "prefetch-miss" else likely
    prefetch = None
    if mode != "no-prefetch":

        def send_prefetch() -> None:
            from django.db import connection

            try:
                side_client.post(
                    f"/api/labeling/phase1/assignments/{aid}/prefetch/",
                    {"position": 0, "candidate": likely},
                    content_type="application/json",
                )
            finally:
                connection.close()

        # The browser's second connection: its own client, thread and database connection.
        prefetch = threading.Thread(target=send_prefetch)
        prefetch.start()
        time.sleep(think)
    cpu = time.process_time()
    seconds, response = timed(
        lambda: client.post(
            f"/api/labeling/phase1/assignments/{aid}/step/",
            {
                "position": 0,
                "ratings": ratings,
                "flags": [False] * k,
                "chosen": chosen,
                "total_time_ms": 1,
            },
            content_type="application/json",
        )
    )
    cpu = time.process_time() - cpu  # this process's threads (the local model samples here)
    assert response.status_code == 200, response.content
    if prefetch is not None:
        prefetch.join()
    body = response.json()["assignment"]
    # The baseline: one plain backend call for the same prefix and the same seeds as the
    # candidates the labeler now sees (so the same tokens are generated), one line each.
    from labeling.models import TrajectoryCandidates

    assignment = Assignment.objects.select_related("task__generation").get(pk=aid)
    params = round_params(assignment)
    backend = sampling.round_backend(params)
    texts = [s["text"] for s in body["steps"]]
    shown = TrajectoryCandidates.objects.get(
        assignment=assignment, prefix_sha256=sampling.prefix_sha256(texts)
    )
    line = sampling.round_sampling_params(params)
    line = type(line)(
        temperature=line.temperature,
        top_p=line.top_p,
        max_new_tokens=line.max_new_tokens,
        stop=("\n",),
    )
    request = SampleRequest(
        problem=body["problem"]["text"],
        seeds=tuple(shown.sampling["seeds"]),
        prefix=solution_prefix(texts) + shown.sampling.get("lead", ""),
    )
    baseline_cpu = time.process_time()
    baseline, _ = timed(lambda: backend.sample([request], line))
    baseline_cpu = time.process_time() - baseline_cpu
    client.post(
        f"/api/labeling/phase1/assignments/{aid}/end/",
        {
            "finish_reason": "give_up",
            "reason": "benchmark",
            "position": 1,
            "ratings": [],
            "flags": [],
            "total_time_ms": 1,
        },
        content_type="application/json",
    )
    return {
        "mode": mode,
        "seconds": seconds,
        "baseline": baseline,
        "cpu_s": cpu,
        "baseline_cpu_s": baseline_cpu,
        # How long sampling the shown candidates took (in the request, or in the prefetch).
        "sampling_s": shown.elapsed_ms / 1000,
        "prefetched": shown.prefetched,
        "passes": shown.sampling.get("passes"),
    }


def run_backend(name: str, args, server_url: str | None) -> dict:
    from django.conf import settings
    from django.test import Client

    if name == "local":
        generator = "bench-local"
        settings.STEPWISE_GENERATORS[generator] = {
            "backend": "local",
            "model": str(ROOT / "var" / "models" / "smollm2-135m-instruct"),
            "chat": True,
        }
    else:
        generator = "bench-openai"
        settings.STEPWISE_GENERATORS[generator] = {
            "backend": "openai",
            "base_url": server_url,
            "model": "smollm2",
            "endpoint": "completions",
            "max_n": 1,
            "concurrency": 4,
        }
    user, _labeler = make_round(
        generator, args.trials * len(MODES) + 8, args.k, args.max_new_tokens
    )
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    client, side_client = Client(), Client()
    client.force_login(user)
    side_client.force_login(user)
    rows = []
    for number in range(args.trials):
        for mode in MODES:
            for _attempt in range(4):  # a problem whose candidates all end is skipped
                try:
                    row = trial(client, side_client, mode, args.think)
                    break
                except RuntimeError:
                    continue
            else:
                raise RuntimeError("no usable problem")
            row["trial"] = number
            rows.append(row)
            print(f"{name} {json.dumps(row)}", flush=True)
    summary = {}
    for mode in MODES:
        mine = [r for r in rows if r["mode"] == mode]
        summary[mode] = {
            "median_s": round(statistics.median(r["seconds"] for r in mine), 3),
            "median_baseline_s": round(statistics.median(r["baseline"] for r in mine), 3),
            "ratio_vs_baseline": round(
                statistics.median(r["seconds"] / r["baseline"] for r in mine), 3
            ),
        }
    return summary


def start_llama_server(threads: int):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_generation import start_server

    return start_server(threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument(
        "--think",
        type=float,
        default=15.0,
        help="seconds spent rating a step before choosing (PRM800K phase-1 lines: 17-79 s/step)",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--backends", default="local,openai")
    args = parser.parse_args()
    url = recreate_database(DB_NAME)
    setup(url, args.threads)
    results = {}
    server = None
    try:
        for name in args.backends.split(","):
            server_url = None
            if name == "openai":
                server, server_url = start_llama_server(args.threads)
            results[name] = run_backend(name, args, server_url)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=20)
    print(json.dumps({"args": vars(args), "results": results}, indent=1))


if __name__ == "__main__":
    main()
