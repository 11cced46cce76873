"""Load from wrk: its command line pinned to the load cores, its run, and the report of bench/wrk_report.lua."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

__all__ = ["WRK_SCRIPT", "parse_wrk", "run_wrk", "start_wrk", "wrk_command", "wrk_errors"]

WRK_SCRIPT = Path(__file__).resolve().parent / "wrk_report.lua"
_ERRORS = ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")


def wrk_command(port: int, path: str, seconds: int, connections: int, cpus: Sequence[int]) -> list[str]:
    """One wrk thread on the load cores, closed loop, our Lua reporter appended."""
    return [
        "taskset",
        "-c",
        ",".join(map(str, cpus)),
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(WRK_SCRIPT),
        f"http://127.0.0.1:{port}{path}",
    ]


def parse_wrk(output: str) -> dict[str, Any]:
    """The BENCH_JSON line of wrk_report.lua."""
    for line in output.splitlines():
        if line.startswith("BENCH_JSON "):
            parsed: dict[str, Any] = orjson.loads(line.removeprefix("BENCH_JSON "))
            return parsed
    raise RuntimeError(f"wrk printed no report:\n{output}")


def wrk_errors(report: dict[str, Any]) -> int:
    """Every failed request of a report: connect, read, write, non-2xx/3xx status and timeouts."""
    return sum(int(report[k]) for k in _ERRORS)


def start_wrk(port: int, path: str, seconds: int, connections: int, cpus: Sequence[int]) -> subprocess.Popen[str]:
    """wrk in the background, its output (the report) on a pipe."""
    return subprocess.Popen(
        wrk_command(port, path, seconds, connections, cpus), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def run_wrk(port: int, path: str, seconds: int, connections: int, cpus: Sequence[int]) -> dict[str, Any]:
    """Run wrk to completion and return its report."""
    out = subprocess.run(
        wrk_command(port, path, seconds, connections, cpus),
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    return parse_wrk(out.stdout)
