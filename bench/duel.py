"""The duel: two variants served at the same time on one core, each loaded by its own wrk, compared by CPU/request.

    uv run python -m bench.duel b,c                     # control a-vs-a, then a-vs-b and a-vs-c; 4 rounds
    uv run python -m bench.duel b --rounds 1 --duration 3 --warmup 1 --out /tmp/d   # a quick look

The machine's speed drifts by up to 2x every few seconds (issue 16), so two variants measured one after the other
see different machines. In a duel both servers are pinned to the same core and loaded at the same time (each by
its own wrk on the other core), so whatever the core does, it does to both; each is charged its own CPU time
(/proc/<pid>/stat utime + stime over the measured window) divided by the requests it served. The share is the
base's CPU per request over the contender's: the contender's capacity per core as a share of the base's. Every
report includes the control, the base against itself, whose spread is the method's noise.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.context import Context, open_context
from bench.launch import REPO
from bench.measure import EXPORT_INTERVAL_S
from bench.process import Server
from bench.settings import Settings, add_run_options, comma_list, settings_from_args
from bench.variants import check_keys, variant_of
from bench.wrk import parse_wrk, start_wrk, wrk_errors
from harness.procfs import cpu_seconds
from harness.results import results_dir

__all__ = ["BASE", "DuelSide", "add_duel_options", "duel_once", "main", "measured_round", "run_duels", "share_stats"]

# How often one round is tried before the duel gives up on a side that serves nothing.
VOID_ROUND_ATTEMPTS = 3
BASE = "a"


@dataclass
class DuelSide:
    """One server of a duel and the numbers its window produced."""

    key: str
    server: Server
    startup_s: float
    cpu0: float = 0.0
    cpu1: float = 0.0
    dropped0: float | None = None
    lines0: int = 0

    def begin(self) -> None:
        """Snapshot the counters at the start of the measured window."""
        self.cpu0 = cpu_seconds(self.server.pids())
        self.dropped0 = self.server.dropped_spans()
        self.lines0 = self.server.log_lines()

    def end(self) -> None:
        """The CPU snapshot at the end of this side's own wrk run (the other may still be running)."""
        self.cpu1 = cpu_seconds(self.server.pids())

    def result(self, wrk: dict[str, Any]) -> dict[str, Any]:
        """This side's numbers for the window."""
        requests = int(wrk["requests"])
        per_request = max(requests, 1)
        cpu = self.cpu1 - self.cpu0
        dropped1 = self.server.dropped_spans()
        return {
            "variant": self.key,
            "requests": requests,
            "rps": round(requests / (wrk["duration_us"] / 1e6), 1),
            "p99_ms": wrk["p99_us"] / 1000,
            "errors": wrk_errors(wrk),
            "cpu_seconds": round(cpu, 3),
            "cpu_us_per_request": round(cpu * 1e6 / per_request, 2),
            "log_lines_per_request": round((self.server.log_lines() - self.lines0) / per_request, 3),
            "spans_dropped": None if self.dropped0 is None or dropped1 is None else dropped1 - self.dropped0,
            "startup_s": round(self.startup_s, 3),
        }


def _load_both(ctx: Context, sides: Sequence[DuelSide], seconds: int, measured: bool) -> list[dict[str, Any]]:
    """One wrk per side, started together; a side's CPU is read the moment its own wrk ends."""
    s = ctx.settings
    procs = [start_wrk(side.server.launch.port, s.path, seconds, s.connections, s.load_cpus) for side in sides]
    outputs: list[str | None] = [None] * len(procs)
    deadline = time.monotonic() + seconds + 60
    while any(out is None for out in outputs):
        for i, proc in enumerate(procs):
            if outputs[i] is None and proc.poll() is not None:
                if measured:
                    sides[i].end()
                outputs[i] = proc.stdout.read() if proc.stdout is not None else ""
        if time.monotonic() > deadline:
            for proc in procs:
                proc.kill()
            raise RuntimeError("wrk did not finish")
        time.sleep(0.01)
    return [parse_wrk(out or "") for out in outputs]


def duel_once(ctx: Context, left: str, right: str, tag: str, right_first: bool = False) -> dict[str, Any]:
    """Start both variants on the server core, warm both up, measure both at once, stop both."""
    s = ctx.settings
    order = [(right, "R"), (left, "L")] if right_first else [(left, "L"), (right, "R")]
    started: dict[str, DuelSide] = {}
    try:
        for key, side_name in order:
            server, startup = ctx.start(key, f"{tag}-{side_name}")
            started[side_name] = DuelSide(key, server, startup)
        sides = [started["L"], started["R"]]
        if s.warmup > 0:
            _load_both(ctx, sides, s.warmup, measured=False)
            time.sleep(EXPORT_INTERVAL_S)  # the warm-up's last batch lands before the window opens
        spans0 = ctx.backends.spans.value
        for side in sides:
            side.begin()
        wrks = _load_both(ctx, sides, s.duration, measured=True)
        time.sleep(EXPORT_INTERVAL_S)
        spans = ctx.backends.spans.value - spans0
        results = [side.result(wrk) for side, wrk in zip(sides, wrks, strict=True)]
    finally:
        for side in started.values():
            ctx.finish(side.server)
    left_r, right_r = results
    return {
        "left": left_r,
        "right": right_r,
        "share": round(left_r["cpu_us_per_request"] / max(right_r["cpu_us_per_request"], 1e-9), 4),
        # Both sides report to one receiver: spans per request of the pair, the right's if the left exports none.
        "spans_received_per_request": round(spans / max(right_r["requests"], 1), 3),
    }


def share_stats(shares: Sequence[float]) -> dict[str, float]:
    """Median, min and max of the per-round shares."""
    return {
        "median": round(statistics.median(shares), 4),
        "min": round(min(shares), 4),
        "max": round(max(shares), 4),
    }


def _summary(base: str, key: str, rounds: list[dict[str, Any]]) -> dict[str, Any]:
    def med(side: str, field: str) -> float:
        return round(float(statistics.median(r[side][field] for r in rounds)), 2)

    dropped = [r["right"]["spans_dropped"] for r in rounds]
    return {
        "base": base,
        "variant": key,
        "label": variant_of(key).label,
        "share": share_stats([r["share"] for r in rounds]),
        "shares": [r["share"] for r in rounds],
        "base_cpu_us_per_request": med("left", "cpu_us_per_request"),
        "cpu_us_per_request": med("right", "cpu_us_per_request"),
        "rps": med("right", "rps"),
        "base_rps": med("left", "rps"),
        "errors": sum(r["left"]["errors"] + r["right"]["errors"] for r in rounds),
        "log_lines_per_request": med("right", "log_lines_per_request"),
        "spans_received_per_request": round(statistics.median(r["spans_received_per_request"] for r in rounds), 3),
        "spans_dropped": None if any(d is None for d in dropped) else sum(dropped),
        "startup_max_s": max(r["right"]["startup_s"] for r in rounds),
        "rounds": rounds,
    }


def _attempt(ctx: Context, base: str, key: str, round_no: int, attempt: int) -> dict[str, Any]:
    # Which side starts first alternates by round, so start order cannot bias a side.
    return duel_once(ctx, base, key, f"{key}-r{round_no}-{attempt}", right_first=bool(round_no % 2))


def measured_round(measure: Callable[[int], dict[str, Any]], name: str, say: Callable[[str], None]) -> dict[str, Any]:
    """measure(attempt) until both sides served requests; a round in which a side served none measured nothing."""
    for attempt in range(1, VOID_ROUND_ATTEMPTS + 1):
        duel = measure(attempt)
        idle = [side for side in ("left", "right") if duel[side]["requests"] == 0]
        if not idle:
            return duel
        # Seen on a machine loaded by other benchmarks: one wrk got no request through in the whole window. Its
        # CPU per request would be a division by nothing; the round is void, not a share of 0 %.
        say(f"{name}: {' and '.join(idle)} served no request; void, run again")
    raise RuntimeError(f"{name}: a side served no request in {VOID_ROUND_ATTEMPTS} attempts")


def run_duels(settings: Settings, contenders: Sequence[str], base: str = BASE) -> dict[str, Any]:
    """The control (base vs base) and base vs each contender, interleaved over the rounds."""
    check_keys([base, *contenders])
    keys = [base, *[k for k in dict.fromkeys(contenders) if k != base]]
    say = settings.progress
    rounds: dict[str, list[dict[str, Any]]] = {k: [] for k in keys}
    started = time.monotonic()
    with open_context(settings, keys) as ctx:
        for round_no in range(settings.rounds):
            shift = round_no % len(keys)
            for key in keys[shift:] + keys[:shift]:
                measure = functools.partial(_attempt, ctx, base, key, round_no)
                duel = measured_round(measure, f"duel {base} vs {key} round {round_no + 1}", say)
                rounds[key].append(duel)
                say(
                    f"[{time.monotonic() - started:6.0f}s] duel round {round_no + 1}/{settings.rounds} "
                    f"{base} vs {key:<12} share {duel['share']:7.1%}  cpu {duel['left']['cpu_us_per_request']:6.1f}"
                    f" vs {duel['right']['cpu_us_per_request']:6.1f} us/req"
                )
    control = _summary(base, base, rounds[base])
    return {
        "method": "duel",
        "base": base,
        "base_label": variant_of(base).label,
        "rounds": settings.rounds,
        "duration": settings.duration,
        "warmup": settings.warmup,
        "connections": settings.connections,
        "control": control,
        "duels": {k: _summary(base, k, rounds[k]) for k in keys[1:]},
    }


def write_duel_report(report: dict[str, Any], out: Path) -> list[Path]:
    """duel.json and duel.md in out."""
    from bench.duel_report import render_duel_markdown

    out.mkdir(parents=True, exist_ok=True)
    (out / "duel.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    (out / "duel.md").write_text(render_duel_markdown(report))
    return [out / "duel.json", out / "duel.md"]


def add_duel_options(parser: argparse.ArgumentParser, rounds: int = 4, duration: int = 10) -> None:
    """The options every duel entry point takes."""
    add_run_options(parser, rounds=rounds, duration=duration, connections=16, per="duel")


def main(argv: list[str] | None = None) -> int:
    """Run the duels and write duel.{json,md}; prints the Markdown."""
    from bench.report import created_now, machine_info

    raw = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m bench.duel", description=__doc__.split("\n\n")[0])
    parser.add_argument("contenders", type=comma_list, help="comma-separated variant keys, each dueled against --base")
    parser.add_argument("--base", default=BASE, help="the variant every contender is compared with (default a)")
    add_duel_options(parser)
    args = parser.parse_args(raw)
    created = created_now()
    report = {
        "schema": 1,
        "created": created,
        "machine": machine_info(REPO),
        "command": "uv run python -m bench.duel " + " ".join(raw),
        **run_duels(settings_from_args(args), args.contenders, args.base),
    }
    out = results_dir(args)
    for path in write_duel_report(report, out):
        print(f"wrote {path}", file=sys.stderr)
    print((out / "duel.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
