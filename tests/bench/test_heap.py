"""The heap probe reads a live Python process's pymalloc statistics over SIGUSR1."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.heap import heap_stats, install_hook, parse_mallocstats

# The child holds `count` small strings, then says so and waits to be asked.
CHILD = (
    "import sys, time; kept = [str(i) * 3 for i in range(int(sys.argv[1]))]; print('ready', flush=True); time.sleep(60)"
)


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Any]:
    procs: list[subprocess.Popen[str]] = []

    def start(count: int, hooked: bool = True) -> subprocess.Popen[str]:
        env = {**os.environ, **(install_hook(tmp_path) if hooked else {})}
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(count)], env=env, stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def _stats(pid: int, directory: Path) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        stats = heap_stats(pid, directory, timeout=1.0)
        if stats is not None:
            return stats
    raise AssertionError("no heap statistics within 10 s")


def test_heap_stats_sees_the_objects_a_process_holds(spawn: Any, tmp_path: Path) -> None:
    small = _stats(spawn(1_000).pid, tmp_path)
    large = _stats(spawn(400_000).pid, tmp_path)
    assert large["live_mib"] - small["live_mib"] > 10  # 400k strings of ~60 bytes
    assert large["arenas"] > small["arenas"]
    assert large["live_mib"] <= large["arenas_mib"]


def test_heap_stats_is_none_for_a_process_that_has_gone(spawn: Any, tmp_path: Path) -> None:
    proc = spawn(10)
    proc.kill()
    proc.wait()
    assert heap_stats(proc.pid, tmp_path, timeout=0.2) is None


def test_parse_mallocstats_refuses_other_text() -> None:
    with pytest.raises(ValueError, match=r"not sys\._debugmallocstats"):
        parse_mallocstats("# arenas allocated current = 3\n")
