"""Runs a bench command the way a reader does (`python -m bench ...` in the repository) for the smoke tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

__all__ = ["NEEDS_TASKSET", "REPO", "run_bench"]

REPO = Path(__file__).resolve().parents[2]
# The harness pins servers and wrk to cores with taskset.
NEEDS_TASKSET = pytest.mark.skipif(shutil.which("taskset") is None, reason="taskset is not installed (util-linux)")


def run_bench(*args: str) -> str:
    """`python -m <args>` in the repository; fails the test with its output unless it exits 0; returns stdout."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(
        [sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=240, env=env, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout
