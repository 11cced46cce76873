"""Where the reliability runs' committed reports live, and the RSS reading they sample."""

from __future__ import annotations

from pathlib import Path

__all__ = ["RESULTS_DIR", "rss_bytes"]

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def rss_bytes(pid: int) -> int | None:
    """Resident set size of a process from /proc (None once it has exited or off Linux)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None
