"""Results of the slow runs: one JSON file (every figure) and one Markdown file (for people) per kind of run."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["RESULTS_DIR", "environment", "markdown_table", "rss_bytes", "write_result"]

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


def _git_commit() -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    out = subprocess.run(
        [git, "rev-parse", "--short=12", "HEAD"],
        capture_output=True,
        text=True,
        cwd=RESULTS_DIR.parent.parent,
        check=False,
    )
    return out.stdout.strip() or None


def environment(load_before: float | None = None) -> dict[str, Any]:
    """Where a run happened, so a figure is never read without its machine (load_before: the 1-minute load
    average when the run started, i.e. other work sharing the machine)."""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "commit": _git_commit(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "wrk": shutil.which("wrk") is not None,
        # Other work on the machine skews every figure: the load average before the run says how much.
        "load_average_1m_before": load_before,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    """A GitHub Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_result(name: str, data: dict[str, Any], markdown: str, out_dir: Path = RESULTS_DIR) -> tuple[Path, Path]:
    """Write <name>.json and <name>.md in out_dir (the latest run of each kind replaces the previous one)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{name}.json"
    md_path = out_dir / f"{name}.md"
    json_path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    md_path.write_text(markdown.rstrip() + "\n", encoding="utf-8")
    return json_path, md_path
