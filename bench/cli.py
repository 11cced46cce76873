"""The one benchmark command.

    uv run python -m bench                      # the full report (~10 min): results/bench/latest.{json,md,png}
    uv run python -m bench --rss-seconds 300    # ... plus the 5-minute RSS check of (d): results/bench/rss.*
                                                # (with each server's Python heap beside its RSS: bench/heap.py)
    uv run python -m bench --write-results      # the same, replacing the committed report in bench/results/
    uv run python -m bench --variants a,b --rounds 1 --duration 3 --warmup 1 --out /tmp/b   # a quick look

results/ is ignored by git, so a run never dirties the checkout; --write-results regenerates the committed report.

After the solo runs (the throughput/latency table) every variant but (a) is dueled against (a) with an a-vs-a
control (bench/duel.py); targets are judged on the duel. `--duel none` skips it, `--duel b,c` picks.

Needs wrk (`apt-get install -y wrk`) and taskset; Go for variant (f).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import replace

from bench.duel import run_duels
from bench.launch import REPO
from bench.report import created_now, machine_info, write_reports
from bench.rounds import run_benchmark
from bench.settings import DEFAULT_PATH, add_run_options, comma_list, settings_from_args
from bench.variants import DEFAULT_VARIANTS, VARIANTS
from harness.results import results_dir

__all__ = ["main", "parse_args"]


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run svc's telemetry variants side by side; write latest.{json,md,png} (default results/bench/).",
        epilog="Variants: " + "; ".join(f"{k} = {v.label}" for k, v in VARIANTS.items()),
    )
    parser.add_argument("--variants", type=comma_list, default=list(DEFAULT_VARIANTS), help="comma-separated keys")
    add_run_options(parser, rounds=4, duration=12, connections=32, per="run")
    parser.add_argument("--path", default=DEFAULT_PATH, help="the GET every variant serves")
    parser.add_argument("--rss-seconds", type=int, default=0, help="RSS-flat check length (0: skip; report: 300)")
    parser.add_argument("--rss-variants", type=comma_list, default=["d-refused", "d-blackhole"])
    parser.add_argument("--duel", type=comma_list, help="variants dueled against (a) (default: all but a; none: skip)")
    parser.add_argument("--quiet-timeout", type=float, default=60.0, help="max wait for a quiet machine per run")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the reports; prints the Markdown table."""
    raw = sys.argv[1:] if argv is None else argv
    args = parse_args(raw)
    out = results_dir(args)
    if args.server_cpu in args.load_cpus:
        print("warning: server and load generator share a CPU; numbers will be pessimistic", file=sys.stderr)
    settings = replace(
        settings_from_args(args),
        variants=args.variants,
        path=args.path,
        rss_seconds=args.rss_seconds,
        rss_variants=args.rss_variants,
        quiet_timeout=args.quiet_timeout,
    )
    created = created_now()
    result = run_benchmark(settings)
    duel = [k for k in (args.variants if args.duel is None else args.duel) if k not in ("a", "none")]
    if duel:
        # Each side of a duel gets half the connections: the server core carries the solo runs' load.
        result["duels"] = run_duels(replace(settings, connections=max(1, settings.connections // 2)), duel)
    report = {
        "schema": 1,
        "created": created,
        "machine": machine_info(REPO),
        "settings": {
            "command": "uv run python -m bench" + (" " + shlex.join(raw) if raw else ""),
            "path": settings.path,
            "connections": settings.connections,
            "duration": settings.duration,
            "warmup": settings.warmup,
            "rounds": settings.rounds,
            "server_cpu": settings.server_cpu,
            "load_cpus": settings.load_cpus,
            "rss_seconds": settings.rss_seconds,
            "baseline": str(settings.baseline) if settings.baseline else None,
        },
        **result,
    }
    for path in write_reports(report, out):
        print(f"wrote {path}", file=sys.stderr)
    md = out / "latest.md"
    if md.exists() and report["variants"]:
        print(md.read_text())
    return 0
