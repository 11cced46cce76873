"""What one benchmark run does and how hard: the Settings, and the command-line options every entry point shares."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.launch import REPO
from bench.variants import DEFAULT_VARIANTS
from harness.results import add_results_arguments
from harness.seed import LINK_PATH

__all__ = ["DEFAULT_PATH", "Settings", "add_run_options", "comma_list", "default_cpus", "settings_from_args"]

DEFAULT_PATH = LINK_PATH


@dataclass
class Settings:
    """What to run and how hard."""

    variants: list[str] = field(default_factory=lambda: list(DEFAULT_VARIANTS))
    rounds: int = 4
    duration: int = 12
    warmup: int = 3
    connections: int = 32
    path: str = DEFAULT_PATH
    server_cpu: int = 0
    load_cpus: list[int] = field(default_factory=lambda: [1])
    rss_seconds: int = 0
    rss_variants: list[str] = field(default_factory=lambda: ["d-refused", "d-blackhole"])
    keep_logs: bool = False
    # Before each run, wait (up to quiet_timeout s) until other processes use less than quiet_threshold CPUs.
    quiet_threshold: float = 0.25
    quiet_timeout: float = 60.0
    # A tree whose svc/ the `<variant>@base` variants import instead (before/after comparisons).
    baseline: Path | None = None
    progress: Callable[[str], None] = field(default=lambda line: print(line, file=sys.stderr, flush=True))


def comma_list(text: str) -> list[str]:
    """A comma-separated command-line list."""
    return [k.strip() for k in text.split(",") if k.strip()]


def _cpu_list(text: str) -> list[int]:
    return [int(k) for k in comma_list(text)]


def default_cpus() -> tuple[int, list[int]]:
    """(the server's core, the load generator's cores): the first CPU this process may use, and the others."""
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        return available[0], available[:1]
    return available[0], available[1:]


def add_run_options(parser: argparse.ArgumentParser, *, rounds: int, duration: int, connections: int, per: str) -> None:
    """The options of every entry point that starts variants; `per` names what one round measures (run, duel)."""
    server_cpu, load_cpus = default_cpus()
    parser.add_argument("--rounds", type=int, default=rounds, help=f"interleaved rounds (default {rounds})")
    parser.add_argument(
        "--duration", type=int, default=duration, help=f"measured seconds per {per} (default {duration})"
    )
    parser.add_argument("--warmup", type=int, default=3, help=f"warm-up seconds per {per} (default 3)")
    parser.add_argument(
        "--connections", type=int, default=connections, help=f"wrk connections per server (default {connections})"
    )
    parser.add_argument("--server-cpu", type=int, default=server_cpu, help="the core every server is pinned to")
    parser.add_argument("--load-cpus", type=_cpu_list, default=load_cpus, help="comma-separated: wrk + receivers")
    parser.add_argument("--keep-logs", action="store_true", help="keep the servers' stdout files (in a temp dir)")
    parser.add_argument(
        "--baseline", type=Path, help="a tree whose svc/ the `<svc variant>@base` variants run (before/after)"
    )
    add_results_arguments(parser, REPO / "bench" / "results")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from the options add_run_options added (an entry point with more options replaces more fields)."""
    return Settings(
        rounds=args.rounds,
        duration=args.duration,
        warmup=args.warmup,
        connections=args.connections,
        server_cpu=args.server_cpu,
        load_cpus=list(args.load_cpus),
        keep_logs=args.keep_logs,
        baseline=args.baseline,
    )
