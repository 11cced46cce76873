"""The cost ladder: every µs above bare at 0 %, 10 % and 100 % sampling, by duel, attributed by py-spy.

    uv run --group bench python -m bench.ladder [--rounds 3 --duration 10 --profile-seconds 15]

Each rung is dueled against bare (a) (bench/duel.py), so its share, and its µs above bare converted at bare's
CPU per request in the same duels, are drift-free. Then each rung is profiled alone: each thread's CPU
time from /proc, the main thread's split into buckets by py-spy's samples; a bucket's µs is its share of the
process's CPU times the rung's CPU per request from the duel. The rows of a rung therefore add up to its measured
total, and the bare-work buckets (uvicorn, Litestar, SQLite, the interpreter) growing above bare's is the
indirect cost telemetry puts on unchanged code. Writes ladder.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from bench.context import open_context
from bench.duel import BASE, add_duel_options, run_duels
from bench.duel_report import base_us, duel_section
from bench.launch import REPO
from bench.profile import Recording, record_samples
from bench.settings import settings_from_args
from bench.variants import variant_of
from harness.results import results_dir

__all__ = ["BUCKETS", "LADDER", "attribute", "bucket_of", "ladder_rows", "main", "render_ladder", "thread_bucket"]

# (rung, the rung it adds to, what the step adds). Two branches from tracing-on-at-0 %: 10 % and 100 %.
LADDER: tuple[tuple[str, str, str], ...] = (
    ("b-middleware", "a", "svc's middleware pass: request id, RED metrics"),
    ("b-notrace", "b-middleware", "one JSON access line per request, Sentry armed"),
    ("c0", "b-notrace", "tracing on, nothing sampled: sampler, non-recording span, context, traceresponse"),
    ("c", "c0", "10 % of requests recorded (server + SQLite span) and exported"),
    ("b-noexport", "c0", "100 % recorded, no exporter"),
    ("b", "b-noexport", "the OTLP/gRPC exporter: encode and send every span"),
)
TOTALS = (("c0", "0 %"), ("c", "10 %"), ("b", "100 %"))

# Main thread, leaf-first: a sample belongs to the bucket of its innermost frame that matches.
BUCKETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("access line (svc/logs.py, logging)", ("svc/logs.py", "svc/access_log.py", "logging/")),
    (
        "RED metrics (svc/metrics.py, svc/red.py, prometheus_client)",
        ("svc/metrics.py", "svc/red.py", "prometheus_client/"),
    ),
    (
        "OTLP encode, export (svc/otlp.py, export.py, posting.py, exporter, grpc)",
        ("svc/otlp.py", "svc/export.py", "svc/posting.py", "opentelemetry/exporter/", "grpc/", "google/"),
    ),
    ("svc/tracing.py, SDK span processor", ("svc/tracing.py", "opentelemetry/sdk/trace/export", "_shared_internal/")),
    ("spans, sampler, context (svc/spans.py, OTel SDK/API)", ("svc/spans.py", "svc/server_span.py", "opentelemetry/")),
    ("Sentry (sentry_sdk, svc/errors.py, svc/sentry_transport.py)", ("sentry_sdk/", "svc/errors.py", "svc/sentry_")),
    ("svc middleware, request id (svc/middleware.py)", ("svc/middleware.py", "svc/exchange.py")),
    ("svc, other modules (handlers, db)", ("svc/",)),
    ("Litestar, msgspec", ("litestar/", "msgspec/")),
    ("uvicorn, httptools, asyncio (and C, GC under them)", ("uvicorn/", "httptools/", "asyncio/", "uvloop/")),
)
OTHER = "main thread: interpreter, stdlib, C (no known frame)"
# Other threads are charged whole, by their own CPU time from /proc (py-spy counts a thread waiting for the
# GIL as active, so its samples would overcount them many times over on one core).
THREADS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("SQLite worker thread (the query, hand-off)", ("sqlite",)),
    ("span export thread (encode, gRPC call)", ("svc-span-export", "Otel", "otel", "Batch")),
    ("Sentry thread", ("svc-sentry",)),
    ("gRPC C-core threads", ("grpc", "event_engine", "lifeguard")),
)
OTHER_THREADS = "other threads"
# Code bare (a) runs too: its growth above bare is telemetry's indirect cost.
BARE_WORK = (
    "svc, other modules (handlers, db)",
    "Litestar, msgspec",
    "uvicorn, httptools, asyncio (and C, GC under them)",
    OTHER,
    "SQLite worker thread (the query, hand-off)",
)
ALL_BUCKETS = (*(b for b, _ in BUCKETS), OTHER, *(b for b, _ in THREADS), OTHER_THREADS)


def bucket_of(stack: Sequence[str]) -> str:
    """The bucket of the innermost frame that belongs to a known package."""
    for frame in reversed(stack):
        path = frame.rpartition("(")[2]
        for name, prefixes in BUCKETS:
            if any(p in path for p in prefixes):
                return name
    return OTHER


def thread_bucket(name: str) -> str:
    """The bucket a non-main thread is charged to, by its name."""
    for bucket, prefixes in THREADS:
        if name.startswith(prefixes):
            return bucket
    return OTHER_THREADS


def attribute(recording: Recording) -> dict[str, float]:
    """Each bucket's share (0..1) of the process's CPU: the main thread's split by its samples, others whole."""
    cpu = recording.thread_cpu
    total = sum(cpu.values()) or 1.0
    main_samples: Counter[str] = Counter()
    for (thread, stack), count in recording.samples.items():
        if thread.startswith("MainThread"):
            main_samples[bucket_of(stack)] += count
    main_total = sum(main_samples.values()) or 1
    shares = dict.fromkeys(ALL_BUCKETS, 0.0)
    for name, count in main_samples.items():
        shares[name] += cpu.get("MainThread", 0.0) / total * count / main_total
    for thread, seconds in cpu.items():
        if thread != "MainThread":
            shares[thread_bucket(thread)] += seconds / total
    return shares


def ladder_rows(duels: dict[str, Any], shares: dict[str, dict[str, float]]) -> dict[str, Any]:
    """The rungs' totals and steps in µs, and each rung's µs by bucket (rows add up to its total)."""
    bare = base_us(duels)
    total = {BASE: bare} | {k: bare / d["share"]["median"] for k, d in duels["duels"].items()}
    steps = [
        {
            "rung": key,
            "label": variant_of(key).label,
            "parent": parent,
            "adds": adds,
            "share": duels["duels"][key]["share"],
            "us_per_request": round(total[key], 1),
            "step_us": round(total[key] - total[parent], 1),
            "above_bare_us": round(total[key] - bare, 1),
            # The same in points of bare's request: drift-free, unlike any absolute µs.
            "step_pct_of_bare": round(100 * (total[key] - total[parent]) / bare, 1),
            "above_bare_pct_of_bare": round(100 * (total[key] - bare) / bare, 1),
        }
        for key, parent, adds in LADDER
        if key in total and parent in total
    ]
    buckets = {
        key: {name: round(share * total[key], 1) for name, share in shares[key].items()}
        for key in [BASE, *(k for k, _, _ in LADDER)]
        if key in shares and key in total
    }
    return {"bare_us": bare, "steps": steps, "buckets": buckets}


def render_ladder(ladder: dict[str, Any], duels: dict[str, Any]) -> str:
    """ladder.md: the duel table, the steps, the per-bucket attribution above bare."""
    bare = ladder["bare_us"]
    lines = ["# svc cost ladder by duel", "", *duel_section(duels), "", "## The ladder", ""]
    lines += [
        f"Each rung's CPU per request is bare's ({bare:.1f} µs, from the duels) over its duel share; a step is the "
        "difference to the rung it adds to. Steps telescope: the steps on a path add up to that rung's total.",
        "",
        "| Rung | share of bare | µs/req | step µs | step, % of bare's request | above bare µs | above bare, % "
        "| adds to | what the step adds |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
        f"| {duels['base_label']} | 100.0% | {bare:.1f} | | | | | | |",
    ]
    for step in ladder["steps"]:
        share = step["share"]
        lines.append(
            f"| {step['label']} | {share['median']:.1%} ({share['min']:.1%}-{share['max']:.1%}) | "
            f"{step['us_per_request']:.1f} | {step['step_us']:+.1f} | {step['step_pct_of_bare']:+.1f} | "
            f"{step['above_bare_us']:+.1f} | {step['above_bare_pct_of_bare']:+.1f} | "
            f"`{step['parent']}` | {step['adds']} |"
        )
    buckets = ladder["buckets"]
    if BASE in buckets:
        lines += _bucket_table(ladder, buckets)
    return "\n".join(lines) + "\n"


def _bucket_table(ladder: dict[str, Any], buckets: dict[str, dict[str, float]]) -> list[str]:
    rungs = [k for k in [BASE, *(k for k, _, _ in LADDER)] if k in buckets]
    totals = [k for k, _ in TOTALS if k in buckets]
    lines = [
        "",
        "## Where the µs go (each thread's CPU from /proc, the main thread split by py-spy, x the duel's µs)",
        "",
        "Per rung: µs per request in each bucket. Right: µs above bare's same bucket at 0 %, 10 % and 100 % "
        "sampling; the rows of a column add up to the measured total above bare. Buckets marked * are code bare "
        "runs too: their growth is the indirect cost telemetry puts on unchanged server and framework code. "
        "The main thread's samples are active ones (py-spy without --idle), so a sample taken while it waits "
        "for the GIL lands on the frame that waits; other threads are charged their own CPU whole.",
        "",
        "| Bucket | "
        + " | ".join(f"`{k}`" for k in rungs)
        + " | "
        + " | ".join(f"above bare at {dict(TOTALS)[k]}" for k in totals)
        + " |",
        "| --- |" + " ---: |" * (len(rungs) + len(totals)),
    ]
    names = list(buckets[BASE])
    for name in names:
        star = " *" if name in BARE_WORK else ""
        cells = [f"{buckets[k][name]:.1f}" for k in rungs]
        above = [f"{buckets[k][name] - buckets[BASE][name]:+.1f}" for k in totals]
        lines.append(f"| {name}{star} | " + " | ".join(cells + above) + " |")
    sums = [f"**{sum(buckets[k].values()):.1f}**" for k in rungs]
    above_sums = [f"**{sum(buckets[k].values()) - sum(buckets[BASE].values()):+.1f}**" for k in totals]
    lines.append("| total (sum of rows) | " + " | ".join(sums + above_sums) + " |")
    measured = {s["rung"]: s for s in ladder["steps"]}
    cells = [f"{ladder['bare_us']:.1f}" if k == BASE else f"{measured[k]['us_per_request']:.1f}" for k in rungs]
    cells += [f"{measured[k]['above_bare_us']:+.1f}" for k in totals]
    lines.append("| measured by duel | " + " | ".join(cells) + " |")
    indirect = [f"{sum(buckets[k].get(n, 0.0) - buckets[BASE].get(n, 0.0) for n in BARE_WORK):+.1f}" for k in totals]
    lines.append("| of which indirect (* rows) | " + " | ".join([""] * len(rungs) + indirect) + " |")
    return lines


def write_ladder(report: dict[str, Any], out: Path) -> Path:
    """ladder.{json,md} from a report's duels and profile shares (the ladder is computed again from them)."""
    report["ladder"] = ladder_rows(report["duels"], report["profile"]["shares"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "ladder.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    text = render_ladder(report["ladder"], report["duels"])
    machine = report["machine"]
    dirty = " (dirty)" if machine["dirty"] else ""
    header = (
        f"Measured {report['created']} at commit `{machine['commit']}`{dirty}; reproduce: `{report['command']}`\n\n"
    )
    (out / "ladder.md").write_text(text.replace("\n\n", "\n\n" + header, 1))
    return out / "ladder.md"


def main(argv: list[str] | None = None) -> int:
    """Duel every rung against bare, profile every rung, write ladder.{json,md}."""
    from bench.report import created_now, machine_info

    raw = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m bench.ladder", description=__doc__.split("\n\n")[0])
    add_duel_options(parser, rounds=3)
    parser.add_argument("--profile-seconds", type=int, default=15, help="py-spy seconds per rung (0: no profiles)")
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--render", type=Path, help="only render ladder.md again from this ladder.json (into --out)")
    args = parser.parse_args(raw)
    if args.render is not None:
        print(write_ladder(orjson.loads(args.render.read_bytes()), results_dir(args)).read_text())
        return 0
    settings = settings_from_args(args)
    created = created_now()
    rungs = [k for k, _, _ in LADDER]
    duels = run_duels(settings, rungs)
    shares: dict[str, dict[str, float]] = {}
    samples: dict[str, int] = {}
    threads: dict[str, dict[str, float]] = {}
    if args.profile_seconds > 0:
        settings.connections *= 2  # alone on the core: the load of both sides of a duel
        with open_context(settings, rungs) as ctx, tempfile.TemporaryDirectory(prefix="svc-ladder-") as tmp:
            for key in [BASE, *rungs]:
                settings.progress(f"py-spy: {key} for {args.profile_seconds} s")
                recorded = record_samples(ctx, key, args.profile_seconds, args.rate, Path(tmp) / f"{key}.txt")
                shares[key] = attribute(recorded)
                samples[key] = sum(recorded.samples.values())
                threads[key] = {name: round(cpu, 3) for name, cpu in recorded.thread_cpu.items()}
    report = {
        "schema": 1,
        "created": created,
        "machine": machine_info(REPO),
        "command": "uv run --group bench python -m bench.ladder " + " ".join(raw),
        "duels": duels,
        "profile": {
            "seconds": args.profile_seconds,
            "rate": args.rate,
            "samples": samples,
            "thread_cpu_s": threads,
            "shares": shares,
        },
    }
    print(write_ladder(report, results_dir(args)).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
