"""Module and function sizes of the Python source, at a commit or in the working tree.

    python benchmarks/module_sizes.py                 # working tree
    python benchmarks/module_sizes.py --rev HEAD~5    # a commit
    python benchmarks/module_sizes.py --only training/services labeling/imports/prm800k

Counts every .py file of the apps and config (migrations and tests left out): the median lines per
module, and the share of functions (methods and nested functions included) longer than 50 lines,
measured from the `def` line to the function's last line. Issue 13 item 3 names these two figures.
"""

from __future__ import annotations

import argparse
import ast
import statistics
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("config", "labeling", "active_learning", "training")
LONG = 50


def _read(rev: str | None, path: str) -> str:
    if rev is None:
        return (ROOT / path).read_text(encoding="utf-8")
    show = ["git", "show", f"{rev}:{path}"]
    return subprocess.run(show, cwd=ROOT, capture_output=True, text=True, check=True).stdout


def _files(rev: str | None, only: list[str]) -> dict[str, str]:
    """path -> source of each counted module."""
    if rev is None:
        paths = [str(p.relative_to(ROOT)) for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    else:
        listing = subprocess.run(
            ["git", "ls-tree", "-r", "--name-only", rev, "--", *PACKAGES],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        paths = [p for p in listing.splitlines() if p.endswith(".py")]
    paths = [p for p in paths if "/migrations/" not in p]
    if only:
        paths = [p for p in paths if any(p == o or p.startswith(o.rstrip("/") + "/") for o in only)]
    return {path: _read(rev, path) for path in sorted(paths)}


def _function_lengths(source: str) -> list[int]:
    tree = ast.parse(source)
    return [
        node.end_lineno - node.lineno + 1
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]


def measure(files: dict[str, str]) -> dict[str, float]:
    lines = [len(source.splitlines()) for source in files.values()]
    functions = [n for source in files.values() for n in _function_lengths(source)]
    long = sum(n > LONG for n in functions)
    return {
        "modules": len(lines),
        "median_lines": statistics.median(lines) if lines else 0,
        "largest": max(lines, default=0),
        "functions": len(functions),
        "over_50": long,
        "share_over_50": long / len(functions) if functions else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", help="a commit (default: the working tree)")
    parser.add_argument("--only", nargs="*", default=[], help="paths (files or folders) to count")
    parser.add_argument("--list", action="store_true", help="also list modules over 300 lines")
    args = parser.parse_args()
    files = _files(args.rev, args.only)
    m = measure(files)
    print(
        f"{args.rev or 'working tree'}: {m['modules']} modules, median {m['median_lines']:g} "
        f"lines, largest {m['largest']}; {m['functions']} functions, {m['over_50']} over {LONG} "
        f"lines ({m['share_over_50']:.1%})"
    )
    if args.list:
        for path, source in files.items():
            if len(source.splitlines()) > 300:
                print(f"  {len(source.splitlines()):5d} {path}")


if __name__ == "__main__":
    main()
