"""Runs the frontend's TypeScript checks (`npm test`: every frontend/src/**/*.test.ts bundled by
esbuild and run by Node's own test runner, `node --test`) so the test command covers them."""

import shutil
import subprocess

import pytest

from tests.e2e.conftest import FRONTEND


def test_frontend_logic_checks_pass():
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is needed for the frontend checks")
    result = subprocess.run(
        [npm, "test", "--silent"], cwd=FRONTEND, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # node --test's TAP summary: the math, labeling, keys and console files ran, nothing failed.
    assert "# fail 0" in result.stdout, result.stdout
    passed = int(result.stdout.split("# pass ")[1].split()[0])
    assert passed >= 15, result.stdout
