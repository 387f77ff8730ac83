"""Runs the frontend's Node-side checks (`npm test`: math splitting, the labeling walk, the
submit body) so CI covers them with the Python suite."""

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
    assert "checks passed" in result.stdout
