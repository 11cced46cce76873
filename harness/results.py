"""Results of the slow runs (benchmark, reliability): one JSON file (every figure) and one Markdown file per run."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.checkout import REPO, read_checkout

__all__ = ["SCRATCH_DIR", "add_results_arguments", "environment", "markdown_table", "results_dir", "write_result"]

# Where runs write unless asked to replace the committed reports: ignored by git (.gitignore), so running a script
# never leaves the checkout dirty.
SCRATCH_DIR = REPO / "results"


def add_results_arguments(parser: argparse.ArgumentParser, committed: Path) -> None:
    """--out DIR or --write-results (replace the committed reports in `committed`); default: SCRATCH_DIR/<folder>."""
    scratch = SCRATCH_DIR / committed.parent.name
    shown = {path: path.relative_to(SCRATCH_DIR.parent) for path in (scratch, committed)}
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--out", type=Path, default=None, help=f"results directory (default {shown[scratch]}/)")
    group.add_argument(
        "--write-results", action="store_true", help=f"write into {shown[committed]}/, replacing the committed reports"
    )
    parser.set_defaults(committed_results=committed, scratch_results=scratch)


def results_dir(args: argparse.Namespace) -> Path:
    """The directory a run parsed by a parser given add_results_arguments writes into."""
    if args.out is not None:
        return Path(args.out)
    return Path(args.committed_results if args.write_results else args.scratch_results)


def environment(load_before: float | None = None) -> dict[str, Any]:
    """Where a run happened, so a figure is never read without its machine (load_before: the 1-minute load
    average when the run started, i.e. other work sharing the machine)."""
    checkout = read_checkout()
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "commit": checkout.short,
        "dirty": checkout.dirty,
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


def write_result(name: str, data: dict[str, Any], markdown: str, out_dir: Path) -> tuple[Path, Path]:
    """Write <name>.json and <name>.md in out_dir (the latest run of each kind replaces the previous one)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{name}.json"
    md_path = out_dir / f"{name}.md"
    json_path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    md_path.write_text(markdown.rstrip() + "\n", encoding="utf-8")
    return json_path, md_path
