"""The wait between tasks in the labeler's workspace, three ways in one run: the next task
leased ahead (prefetch, the default), the next task riding on the submit (``claim_next``, one
round trip), and the submit followed by a claim (two round trips, the path before both); all
against one API round trip from the page.

    python benchmarks/bench_workspace.py --tasks 30

A scratch database (``bench_workspace``) gets one labeler and 3 x ``--tasks`` generation-0 tasks
(6 steps each, with inline and display math). gunicorn serves the app as ``dev.py up`` does
(DEBUG off, 2 workers x 4 threads here), and headless Chromium labels every task by keyboard:
``1`` on each step, then ``s``: ``--tasks`` tasks on ``/label/?claim_next=0&prefetch=0``, then
``--tasks`` on ``/label/?prefetch=0``, then ``--tasks`` on ``/label/``. With prefetch the script
waits for the page's prefetch to answer before rating (a person takes far longer than one round
trip to rate six steps). Measured in the page (``performance`` marks set by the workspace):

- switch: from pressing ``s`` (the workspace's ``stepwise:finish`` mark) to the next task's rows
  built, KaTeX included (``stepwise:shown``): the request(s) and the rendering.
- baseline, in the same page and run: one authenticated ``GET /api/labeling/ping/`` (a minimal
  DRF endpoint reading one row) with ``fetch``, the floor of any request the page makes.

Reports p50/p95 of each, the ratios of the medians, then checks the leasing invariants: every
task got exactly one labeling, and no lease is left open. Chromium flags as in the browser tests.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_db import ROOT, recreate_database, setup_django

DATABASE = "bench_workspace"
PASSWORD = "bench password 12345"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _seed(n_tasks: int) -> None:
    import hashlib

    from django.contrib.auth import get_user_model

    from labeling.models import Generation, Labeler, LabelingTask, Problem, Solution, Step

    user = get_user_model().objects.create_user(username="bench", password=PASSWORD)
    Labeler.objects.create(user=user, screening_status=Labeler.ScreeningStatus.PASSED)
    generation = Generation.objects.create(number=0, state=Generation.State.ACTIVE)
    for t in range(n_tasks):
        problem = Problem.objects.create(
            text=f"Problem {t}: find $x$ when $x^2 - {t + 1}x = 0$ and $x \\neq 0$. "
            f"Then evaluate \\[\\sum_{{k=1}}^{{{t + 2}}} k^2.\\]",
            reference_answer=f"\\frac{{{t + 1}}}{{1}}",
        )
        steps = [
            f"Step {i} of task {t}: factor $x(x - {t + 1}) = 0$, so $$x = {t + 1}.$$"
            for i in range(6)
        ]
        digest = hashlib.sha256(f"bench {t}".encode()).hexdigest()
        solution = Solution.objects.create(
            problem=problem, fingerprint=digest, num_steps=len(steps), source="bench"
        )
        Step.objects.bulk_create(
            Step(solution=solution, position=i, text=text) for i, text in enumerate(steps)
        )
        LabelingTask.objects.create(solution=solution, generation=generation, priority=-t)


def _wait_for(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    import urllib.request

    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("gunicorn exited early")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _label(
    page, path: str, n_tasks: int, *, prefetch: bool = False
) -> tuple[list[float], list[dict[str, float]]]:
    """Labels ``n_tasks`` tasks on ``path``; returns the switch times and their phases."""
    page.goto(path)
    for _ in range(n_tasks):
        page.wait_for_selector("#step-0:not([hidden])")
        if prefetch:
            page.wait_for_function(
                "() => performance.getEntriesByName('stepwise:prefetched').length >="
                " performance.getEntriesByName('stepwise:shown').length"
            )
        n_steps = page.locator("#steps .item-step").count()
        for _ in range(n_steps):
            page.keyboard.press("1")
        page.keyboard.press("s")
        page.wait_for_function(
            "() => performance.getEntriesByName('stepwise:shown').length >"
            " performance.getEntriesByName('stepwise:finish').length"
            " || !document.querySelector('#no-work').hidden"
        )
    switch_ms = page.evaluate(
        """() => {
          const f = performance.getEntriesByName('stepwise:finish');
          const s = performance.getEntriesByName('stepwise:shown');
          // shown[0] is the first task; shown[i + 1] follows finish[i].
          return f.slice(0, s.length - 1).map((m, i) => s[i + 1].startTime - m.startTime);
        }"""
    )
    phases = page.evaluate(
        """() => {
          const at = (name) => performance.getEntriesByName(name).map((m) => m.startTime);
          const [f, sent, claimed, shown] = ['finish', 'sent', 'claimed', 'shown'].map(
            (n) => at('stepwise:' + n));
          // Index 0 of sent/claimed/shown belongs to the first task's load. With claim_next,
          // "sent" and "claimed" are the same moment: the submit's answer held the next task.
          return f.slice(0, shown.length - 1).map((t, i) => ({
            submit: sent[i + 1] - t,
            claim: claimed[i + 1] - sent[i + 1],
            render: shown[i + 1] - claimed[i + 1],
          }));
        }"""
    )
    return switch_ms, phases


def _summary(switch_ms: list[float], phases: list[dict[str, float]]) -> dict:
    return {
        "switches_measured": len(switch_ms),
        "switch_ms_p50": round(statistics.median(switch_ms), 1),
        "switch_ms_p95": round(_pct(switch_ms, 0.95), 1),
        "switches_over_100_ms": sorted(round(ms) for ms in switch_ms if ms > 100),
        "phases_ms_p50": {
            name: round(statistics.median(p[name] for p in phases), 1)
            for name in ("submit", "claim", "render")
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=30)
    parser.add_argument("--pings", type=int, default=60)
    args = parser.parse_args()

    subprocess.run(["npm", "run", "build"], cwd=ROOT / "frontend", check=True, capture_output=True)
    url = recreate_database(DATABASE)
    os.environ["DATABASE_URL"] = url
    setup_django()
    _seed(3 * args.tasks)

    port = _free_port()
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_DEBUG": "0"}
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--threads",
            "4",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{base}/healthz", server)
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(base_url=base)
            page.set_default_timeout(20_000)
            page.goto("/label/")
            page.fill("input[name=username]", "bench")
            page.fill("input[name=password]", PASSWORD)
            page.click("#sign-in")
            page.wait_for_selector("#step-0:not([hidden])")
            two_trips = _label(page, "/label/?claim_next=0&prefetch=0", args.tasks)
            one_trip = _label(page, "/label/?prefetch=0", args.tasks)
            ahead = _label(page, "/label/", args.tasks, prefetch=True)
            ping_ms = page.evaluate(
                """async (n) => {
                  const out = [];
                  for (let i = 0; i < n; i++) {
                    const t0 = performance.now();
                    const r = await fetch('/api/labeling/ping/', {credentials: 'same-origin'});
                    await r.json();
                    out.push(performance.now() - t0);
                  }
                  return out;
                }""",
                args.pings,
            )
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)

    from labeling.models import Assignment, Labeling, LabelingTask

    labelings = Labeling.objects.count()
    per_task = set(Labeling.objects.values_list("task_id", flat=True))
    n_tasks = 3 * args.tasks
    pre, one, two = _summary(*ahead), _summary(*one_trip), _summary(*two_trips)
    ping_p50 = statistics.median(ping_ms)
    report = {
        "tasks": n_tasks,
        "prefetched": pre,
        "next_with_submit": one,
        "submit_then_claim": two,
        "ping_ms_p50": round(ping_p50, 1),
        "ping_ms_p95": round(_pct(ping_ms, 0.95), 1),
        "ratio_prefetched_to_submit_then_claim_p50": round(
            pre["switch_ms_p50"] / two["switch_ms_p50"], 3
        ),
        "ratio_next_with_submit_to_submit_then_claim_p50": round(
            one["switch_ms_p50"] / two["switch_ms_p50"], 2
        ),
        "ratio_prefetched_to_ping_p50": round(pre["switch_ms_p50"] / ping_p50, 2),
        "ratio_next_with_submit_to_ping_p50": round(one["switch_ms_p50"] / ping_p50, 2),
        "ratio_submit_then_claim_to_ping_p50": round(two["switch_ms_p50"] / ping_p50, 2),
        "labelings": labelings,
        "every_task_labeled_once": labelings == n_tasks == len(per_task)
        and LabelingTask.objects.count() == n_tasks,
        "open_leases_left": Assignment.objects.filter(state=Assignment.State.ACTIVE).count(),
    }
    print(json.dumps(report, indent=2))
    return 0 if report["every_task_labeled_once"] and not report["open_leases_left"] else 1


if __name__ == "__main__":
    sys.exit(main())
