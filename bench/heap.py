"""A running server's Python heap: pymalloc's own statistics, asked for over SIGUSR1.

RSS alone cannot tell live objects from memory an allocator keeps for reuse. The RSS check starts svc with a
sitecustomize (written here, put on PYTHONPATH) that answers SIGUSR1 by writing sys._debugmallocstats() to a
file; heap_stats() sends the signal, waits for the file and reads two numbers from it: the bytes in live
blocks (what the program holds) and the arenas pymalloc keeps mapped (what RSS sees).
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path
from typing import Any

__all__ = ["HOOK_ENV", "heap_stats", "install_hook", "parse_mallocstats"]

HOOK_ENV = "SVC_BENCH_HEAP_DIR"
ARENA_MIB = 1.0  # pymalloc's arena size on 64-bit CPython 3.10+

# Runs in the server at interpreter start-up (site imports sitecustomize): one signal handler, nothing else.
_HOOK = '''"""svc bench: on SIGUSR1, write sys._debugmallocstats() to $SVC_BENCH_HEAP_DIR/heap-<pid>.txt."""
import os
import signal
import sys


def _dump(signum, frame):
    path = os.path.join(os.environ["SVC_BENCH_HEAP_DIR"], f"heap-{os.getpid()}.txt")
    fd = os.open(path + ".part", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    saved = os.dup(2)
    try:
        # _debugmallocstats writes to C stderr only; it is pointed at the file for the call.
        sys.stderr.flush()
        os.dup2(fd, 2)
        sys._debugmallocstats()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(fd)
    os.replace(path + ".part", path)


if os.environ.get("SVC_BENCH_HEAP_DIR"):
    signal.signal(signal.SIGUSR1, _dump)
'''

_STAT = re.compile(r"^# (arenas allocated current|bytes in allocated blocks|bytes in available blocks)\s*=\s*([\d,]+)")


def install_hook(directory: Path) -> dict[str, str]:
    """Write the sitecustomize into directory; returns the environment a server needs to load it."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sitecustomize.py").write_text(_HOOK)
    return {"PYTHONPATH": str(directory), HOOK_ENV: str(directory)}


def parse_mallocstats(text: str) -> dict[str, float]:
    """Live and free MiB in pymalloc's blocks and the arenas it holds, from sys._debugmallocstats() output."""
    found: dict[str, int] = {}
    for line in text.splitlines():
        match = _STAT.match(line)
        if match:
            found[match.group(1)] = int(match.group(2).replace(",", ""))
    if len(found) != 3:
        raise ValueError(f"not sys._debugmallocstats() output: found {sorted(found)}")
    return {
        "arenas": found["arenas allocated current"],
        "arenas_mib": found["arenas allocated current"] * ARENA_MIB,
        "live_mib": round(found["bytes in allocated blocks"] / 2**20, 2),
        "free_mib": round(found["bytes in available blocks"] / 2**20, 2),
    }


def heap_stats(pid: int, directory: Path, timeout: float = 5.0) -> dict[str, Any] | None:
    """Ask the server for its heap statistics; None if it has no hook or does not answer within timeout."""
    path = directory / f"heap-{pid}.txt"
    path.unlink(missing_ok=True)
    try:
        os.kill(pid, signal.SIGUSR1)
    except ProcessLookupError:
        return None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return parse_mallocstats(path.read_text())
        time.sleep(0.05)
    return None
