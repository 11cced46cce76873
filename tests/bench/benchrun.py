"""Runs a bench command the way a reader does (`python -m bench ...` in the repository) for the smoke tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

__all__ = ["REPO", "SMOKE", "run_bench"]

REPO = Path(__file__).resolve().parents[2]
# The marks of a test that runs a bench command: slow; taskset, which pins servers and wrk to cores; and wrk
# (conftest.py: a skip without it on a laptop, a failure under CI).
SMOKE = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("taskset") is None, reason="taskset is not installed (util-linux)"),
    pytest.mark.usefixtures("wrk"),
]


def run_bench(*args: str) -> str:
    """`python -m <args>` in the repository; fails the test with its output unless it exits 0; returns stdout."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(
        [sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=240, env=env, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout
