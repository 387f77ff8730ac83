"""Runs the console's Node-side checks (frontend/src/console/format.check.ts)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import ROOT

FRONTEND = ROOT / "frontend"


def test_console_logic_checks_pass(tmp_path):
    esbuild = FRONTEND / "node_modules" / ".bin" / "esbuild"
    node = shutil.which("node")
    if node is None or not esbuild.exists():
        pytest.fail("node and the frontend's packages (npm ci) are needed for the console checks")
    bundle = tmp_path / "format.check.mjs"
    subprocess.run(
        [
            str(esbuild),
            "src/console/format.check.ts",
            "--bundle",
            "--platform=node",
            "--format=esm",
            "--log-level=warning",
            f"--outfile={bundle}",
        ],
        cwd=FRONTEND,
        check=True,
        timeout=120,
    )
    result = subprocess.run([node, str(bundle)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "console: 34 checks passed" in result.stdout
