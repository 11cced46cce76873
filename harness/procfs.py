"""Process readings from Linux /proc: a process tree, its CPU time, its resident memory, and how busy the CPUs are."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = [
    "CLK_TCK",
    "RssSampler",
    "core_busy",
    "cpu_seconds",
    "cpu_times",
    "machine_busy",
    "memory_kib",
    "process_tree",
    "rss_bytes",
    "thread_cpu",
]

PROC = Path("/proc")
CLK_TCK = os.sysconf("SC_CLK_TCK")
# /proc/<pid>/stat after the ")" that closes the name: field 3 (state) is index 0, so these are fields 4, 14, 15.
_PPID, _UTIME, _STIME = 1, 11, 12


def _stat(path: Path) -> tuple[str, list[str]]:
    """The name and the fields after it of a stat file; the name (comm) may hold spaces and parentheses."""
    text = path.read_text()
    return text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :].split()


def _ticks(fields: list[str]) -> tuple[int, int]:
    return int(fields[_UTIME]), int(fields[_STIME])


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants (granian, wrappers and multiprocessing children fork), pid first."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):  # a process that exits while we look
                children.setdefault(int(_stat(entry / "stat")[1][_PPID]), []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def cpu_times(pids: Iterable[int]) -> tuple[float, float]:
    """User and system CPU seconds of the processes (all their threads); a process that has gone counts 0."""
    user = system = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError):
            u, s = _ticks(_stat(PROC / str(pid) / "stat")[1])
            user, system = user + u, system + s
    return user / CLK_TCK, system / CLK_TCK


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds of the processes (all their threads)."""
    return sum(cpu_times(pids))


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """tid -> (thread name, user + system CPU seconds) of every thread of one process."""
    threads: dict[int, tuple[str, float]] = {}
    with contextlib.suppress(OSError):
        for task in (PROC / str(pid) / "task").iterdir():
            with contextlib.suppress(OSError, ValueError, IndexError):
                name, fields = _stat(task / "stat")
                threads[int(task.name)] = (name, sum(_ticks(fields)) / CLK_TCK)
    return threads


def _status_kib(pid: int, key: str) -> int | None:
    """One memory line of /proc/<pid>/status (VmRSS, VmHWM...) in KiB; None once the process has gone."""
    try:
        with (PROC / str(pid) / "status").open(encoding="ascii") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None  # a zombie has no memory lines


def memory_kib(pids: Iterable[int], key: str = "VmRSS") -> int:
    """Sum over the processes of a status memory field in KiB: VmRSS (resident now) or VmHWM (resident at peak)."""
    return sum(_status_kib(pid, key) or 0 for pid in pids)


def rss_bytes(pid: int) -> int | None:
    """Resident set size of one process in bytes (None once it has exited)."""
    kib = _status_kib(pid, "VmRSS")
    return None if kib is None else kib * 1024


class RssSampler:
    """VmRSS of a process and its descendants: when the block begins, every `every` s on a thread, when it ends."""

    def __init__(self, pid: int, every: float = 1.0) -> None:
        self.pid = pid
        self.every = every
        self.samples: list[tuple[float, float]] = []  # (seconds since the block began, MiB), 2 decimals each
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rss-{pid}", daemon=True)
        self._start = 0.0

    def sample(self) -> None:
        """Take one sample now (none once the process has gone)."""
        kib = [_status_kib(pid, "VmRSS") for pid in process_tree(self.pid)]
        if kib[0] is not None:
            self.samples.append((round(time.monotonic() - self._start, 2), round(sum(k or 0 for k in kib) / 1024, 2)))

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def __enter__(self) -> Self:
        # The first and the last sample are taken in the caller's thread: a block's start and end are always read.
        self._start = time.monotonic()
        self.sample()
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(10)
        self.sample()


def core_busy(cpu: int) -> float:
    """Non-idle seconds of one CPU since boot, from /proc/stat."""
    for line in (PROC / "stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            ticks = [int(v) for v in line.split()[1:]]
            idle = ticks[3] + ticks[4]  # idle + iowait
            return (sum(ticks[:8]) - idle) / CLK_TCK  # user..steal; guest time is already in user
    raise RuntimeError(f"cpu{cpu} not in /proc/stat")


def machine_busy(seconds: float = 0.5) -> float:
    """CPUs' worth of non-idle time on the CPUs this process may use, over a short window (0.0 when idle)."""
    cpus = sorted(os.sched_getaffinity(0))
    before = sum(core_busy(c) for c in cpus)
    time.sleep(seconds)  # the window itself: the reading is a difference over it
    return (sum(core_busy(c) for c in cpus) - before) / seconds
