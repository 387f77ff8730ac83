"""PRM800K line validation: the declared msgspec schema against the hand-written checks it replaced.

    python benchmarks/make_prm800k.py --lines 20000 --output var/bench/prm800k_20k.jsonl
    python benchmarks/bench_prm800k_parse.py var/bench/prm800k_20k.jsonl

Parse only (no database): each decoded line is validated and read into what the writer stores,
the import key (sha256 of the canonical line) included. The old parser is read from git at
BASELINE_REV (the last commit with labeling/imports/prm800k.py as one module), so the two run in
the same process on the same lines; the median of 5 passes of each is reported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE_REV = "965ba31"


def _old_parser():
    source = subprocess.run(
        ["git", "show", f"{BASELINE_REV}:labeling/imports/prm800k.py"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    # Generation has moved apps since; the parser never uses it.
    source = source.replace("from active_learning.models import Generation\n", "")
    module = types.ModuleType("old_prm800k")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, "old_prm800k.py", "exec"), module.__dict__)  # noqa: S102
    return module._parse_line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--passes", type=int, default=5)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    import orjson

    from labeling.imports.prm800k.parse import parse_line

    lines = [orjson.loads(raw) for raw in args.file.open("rb") if raw.strip()]
    parsers = {"hand-written checks": _old_parser(), "msgspec schema": parse_line}
    times: dict[str, list[float]] = {name: [] for name in parsers}
    for _ in range(args.passes):
        for name, parse in parsers.items():
            started = time.perf_counter()
            for number, data in enumerate(lines, start=1):
                parse(number, data)
            times[name].append(time.perf_counter() - started)
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, seconds in medians.items():
        print(f"{name:20s} {seconds:6.2f} s  {len(lines) / seconds:9,.0f} lines/s")
    ratio = medians["hand-written checks"] / medians["msgspec schema"]
    print(f"schema vs hand-written: {ratio:.2f}x the lines per second ({len(lines)} lines)")


if __name__ == "__main__":
    main()
