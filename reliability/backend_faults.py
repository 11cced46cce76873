"""Faulty telemetry backends: svc keeps serving while its OTLP collector or Sentry refuses, hangs or fails.

One case = svc (a real process) exporting to an OTLP receiver and a Sentry endpoint in given modes, under a
fixed-rate loopback load in which one request in FAULT_EVERY is GET /fault (an injected 500 that makes a
Sentry event). Recorded: every request's outcome and latency, svc_telemetry_dropped_total per signal, RSS over
time, every non-access log line by logger, and how long SIGTERM took.

    uv run python -m reliability.backend_faults        (what scripts/backend-faults runs: the full matrix, with a
                                                       healthy baseline, p99 and RSS compared against it)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import tempfile
from collections import Counter
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from harness.backends import FAULT_MODES, Mode
from harness.loglines import WarningLines, warning_lines
from harness.mix import Call
from harness.otlp_receivers import otlp_receiver
from harness.procfs import RssSampler
from harness.results import add_results_arguments, environment, markdown_table, results_dir, write_result
from harness.sentry_ingest import SentryReceiver
from harness.service import base_env, service_process
from reliability.load import Outcome, run_load, summarize
from reliability.report import RESULTS_DIR
from svc.sentry_transport import QUEUE_SIZE
from svc.telemetry import DropCounter
from svc.tracing import BATCH_SIZE, MAX_QUEUE

__all__ = ["FaultReport", "fault_case", "main", "scrape_dropped"]

FAULT_EVERY = 5  # one request in five is GET /fault: a steady stream of Sentry events
DROP_LOG_INTERVAL = 60.0  # DropCounter's default interval (svc.telemetry)
Protocol = Literal["grpc", "http/protobuf"]
_DROPPED = re.compile(r'^svc_telemetry_dropped_total\{reason="\w+",signal="(\w+)"\} ([0-9.e+]+)$', re.MULTILINE)


@dataclass
class FaultReport:
    """What one backend configuration did to svc."""

    otlp_protocol: str
    otlp_mode: str
    sentry_mode: str
    duration_s: float
    load: dict[str, Any]
    traced_requests: int
    injected_faults: int
    injected_not_500: int
    dropped: dict[str, float]
    rss_mib: list[tuple[float, float]] = field(default_factory=list)
    log_lines: dict[str, int] = field(default_factory=dict)  # warning+ lines by logger, access lines excluded
    drop_summary_lines: dict[str, int] = field(default_factory=dict)  # DropCounter lines by signal
    exit_code: int | None = None
    exit_seconds: float | None = None
    shutdown_budget_s: float = 0.0

    @property
    def rss_growth_pct(self) -> float | None:
        """RSS at the end against RSS once the first third of the run (queues filling) is over."""
        if len(self.rss_mib) < 3:
            return None
        third = self.rss_mib[0][0] + (self.rss_mib[-1][0] - self.rss_mib[0][0]) / 3
        start = next(rss for t, rss in self.rss_mib if t >= third)
        return round(100 * (self.rss_mib[-1][1] - start) / start, 1)

    def problems(self) -> list[str]:
        """Every way svc failed to shrug the fault off; empty when it did."""
        found = []
        if self.load["failed"]:
            found.append(f"{self.load['failed']} request(s) failed: {self.load['errors']} {self.load['statuses']}")
        if self.injected_not_500:
            found.append(f"{self.injected_not_500} injected fault(s) did not answer 500")
        if self.otlp_mode != "ok" and self.dropped.get("spans", 0) <= 0:
            found.append("spans were lost but svc_telemetry_dropped_total{signal=spans} did not count them")
        if self.sentry_mode != "ok" and self.dropped.get("errors", 0) <= 0:
            found.append("errors were lost but svc_telemetry_dropped_total{signal=errors} did not count them")
        # Bounded queues: whatever was not exported is counted, except what fits in the queue and one batch.
        if self.otlp_mode != "ok" and self.dropped.get("spans", 0) < self.traced_requests - MAX_QUEUE - BATCH_SIZE:
            found.append(f"span queue unbounded? {self.traced_requests} made, {self.dropped.get('spans')} dropped")
        if self.sentry_mode != "ok" and self.dropped.get("errors", 0) < self.injected_faults - QUEUE_SIZE - 2:
            found.append(f"event queue unbounded? {self.injected_faults} made, {self.dropped.get('errors')} dropped")
        allowed = 1 + math.floor(self.duration_s / DROP_LOG_INTERVAL)
        lines = WarningLines(Counter(self.log_lines), Counter(self.drop_summary_lines))
        found += lines.over(allowed, f"{self.duration_s:.0f} s")
        if self.exit_code != 0:
            found.append(f"exit code {self.exit_code}")
        if self.exit_seconds is None or self.exit_seconds > self.shutdown_budget_s:
            found.append(f"exit took {self.exit_seconds} s (budget {self.shutdown_budget_s} s)")
        return found


def _plan(index: int) -> Call:
    if index % FAULT_EVERY == 0:
        return Call("GET", f"/fault?tag=f{index}", injected=True)
    if index % FAULT_EVERY == 1:
        return Call("GET", "/links/seed-link")
    return Call("GET", "/version")


def scrape_dropped(admin_url: str) -> dict[str, float]:
    """svc_telemetry_dropped_total by signal (summed over reasons), from the admin listener."""
    text = httpx.get(f"{admin_url}/metrics", timeout=5).text
    totals: dict[str, float] = {}
    for name, value in _DROPPED.findall(text):
        totals[name] = totals.get(name, 0.0) + float(value)
    return totals


def fault_case(
    work_dir: Path,
    *,
    otlp_protocol: Protocol,
    otlp_mode: Mode,
    sentry_mode: Mode,
    rate: float = 400.0,
    duration_s: float = 5.0,
    otlp_timeout_ms: int = 1000,
    shutdown_timeout_s: float = 10.0,
    rss_every_s: float = 0.5,
) -> FaultReport:
    """Run svc against backends in the given modes under `rate` req/s for duration_s; report what happened."""
    with ExitStack() as stack:
        otlp = otlp_receiver(otlp_protocol, otlp_mode)
        stack.enter_context(otlp)
        sentry = stack.enter_context(SentryReceiver(sentry_mode))
        env = base_env(
            work_dir,
            OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint,
            OTEL_EXPORTER_OTLP_PROTOCOL=otlp_protocol,
            OTEL_EXPORTER_OTLP_TIMEOUT=str(otlp_timeout_ms),
            SENTRY_DSN=sentry.dsn,
            FAULTS_ENABLED="true",
            SHUTDOWN_TIMEOUT=str(shutdown_timeout_s),
        )
        svc = stack.enter_context(service_process(env))
        assert svc.proc is not None
        created = httpx.post(f"{svc.url}/links", json={"url": "https://example.com/", "slug": "seed-link"})
        assert created.status_code in (201, 409), created.text
        with RssSampler(svc.proc.pid, every=rss_every_s) as sampler:
            outcomes: list[Outcome] = run_load(
                svc.url, _plan, rate=rate, duration=duration_s, max_requests=int(rate * duration_s) + 1, concurrency=128
            )
        rss = sampler.samples
        dropped = scrape_dropped(svc.admin_url)
        ended = svc.terminate(shutdown_timeout_s + 20)
        logs = svc.logs()

    lines = warning_lines(logs)
    injected = [o for o in outcomes if o.call.injected]
    return FaultReport(
        otlp_protocol=otlp_protocol,
        otlp_mode=otlp_mode,
        sentry_mode=sentry_mode,
        duration_s=duration_s,
        load=summarize(outcomes),
        traced_requests=sum(1 for o in outcomes if o.trace_id is not None and o.sampled),
        injected_faults=len(injected),
        injected_not_500=sum(1 for o in injected if o.status != 500),
        dropped=dropped,
        rss_mib=rss,
        log_lines=dict(lines.by_logger),
        drop_summary_lines=dict(lines.drops),
        exit_code=ended.code,
        exit_seconds=ended.seconds,
        # In-flight requests get SHUTDOWN_TIMEOUT; then spans and events flush, each for at most FLUSH_TIMEOUT.
        shutdown_budget_s=shutdown_timeout_s,
    )


_ = DropCounter  # the interval above mirrors its default; imported so a rename shows up here


def _cases() -> list[tuple[Protocol, Mode, Mode]]:
    cases: list[tuple[Protocol, Mode, Mode]] = []
    for protocol in ("grpc", "http/protobuf"):
        cases += [(protocol, mode, "ok") for mode in FAULT_MODES]
    cases += [("grpc", "ok", mode) for mode in FAULT_MODES]
    return cases


def _markdown(pairs: list[tuple[FaultReport, FaultReport]], env: dict[str, Any], rate: float, duration: float) -> str:
    rows = []
    for base, r in pairs:
        p99, base_p99 = r.load["p99_ms"], base.load["p99_ms"]
        delta = f"{100 * (p99 - base_p99) / base_p99:+.0f} %" if p99 and base_p99 else ""
        rows.append(
            [
                r.otlp_protocol,
                r.otlp_mode,
                r.sentry_mode,
                r.load["requests"],
                r.load["failed"],
                r.load["p50_ms"],
                base_p99,
                p99,
                delta,
                int(r.dropped.get("spans", 0)),
                int(r.dropped.get("errors", 0)),
                f"{base.rss_mib[-1][1] if base.rss_mib else None} -> {r.rss_mib[-1][1] if r.rss_mib else None}",
                r.rss_growth_pct,
                sum(r.log_lines.values()),
                r.exit_seconds,
                "ok" if not r.problems() and not base.problems() else "; ".join(base.problems() + r.problems()),
            ]
        )
    header = [
        "OTLP",
        "OTLP mode",
        "Sentry mode",
        "requests",
        "failed",
        "p50 ms",
        "healthy p99 ms",
        "p99 ms",
        "p99 vs healthy",
        "spans dropped",
        "errors dropped",
        "RSS MiB healthy -> faulty",
        "RSS growth last 2/3",
        "warning lines",
        "exit s",
        "verdict",
    ]
    deltas = sorted(
        100 * (r.load["p99_ms"] - b.load["p99_ms"]) / b.load["p99_ms"]
        for b, r in pairs
        if r.load["p99_ms"] and b.load["p99_ms"]
    )
    median = f"{deltas[len(deltas) // 2]:+.0f} %" if deltas else "n/a"
    return "\n\n".join(
        [
            "# Faulty telemetry backends",
            f"{env['date']}, commit {env['commit']}, {env['cpus']} CPUs "
            f"(load average {env['load_average_1m_before']} before the run). Each fault case runs right after "
            f"its own healthy baseline (same protocol, fresh process): {duration:.0f} s each at {rate:.0f} req/s "
            f"(1 in {FAULT_EVERY} is an injected GET /fault, which p99 leaves out), "
            "OTEL_EXPORTER_OTLP_TIMEOUT=1000 ms. RSS growth is the last sample against the sample after the "
            "first third (queues filled).",
            markdown_table(header, rows),
            f"Median p99 change against the paired healthy run: **{median}** (target: within 10 %). The p99 is a "
            "measurement, not a gate: svc and the load generator share two cores, so a few ms of scheduling "
            "jitter is tens of percent at these latencies; compare rows, and rerun before drawing conclusions.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Measure svc against refusing, hanging and failing backends.")
    parser.add_argument("--rate", type=float, default=400.0, help="requests per second (about 1/3 of capacity)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per run (two runs per case)")
    parser.add_argument("--repeat", type=int, default=1, help="run every case this many times")
    parser.add_argument(
        "--only", default="", help="comma-separated cases as protocol:otlp_mode:sentry_mode, e.g. grpc:hang:ok"
    )
    parser.add_argument("--name", default="backend-faults", help="result file name (without extension)")
    add_results_arguments(parser, RESULTS_DIR)
    args = parser.parse_args(argv)
    load_before = round(os.getloadavg()[0], 2)
    cases = _cases()
    if args.only:
        cases = [c for c in cases if ":".join(c) in args.only.split(",")]
        if not cases:
            parser.error(f"no case matches --only {args.only!r}; cases: {[':'.join(c) for c in _cases()]}")
    pairs = []
    for protocol, otlp_mode, sentry_mode in cases * args.repeat:
        runs = []
        for mode_pair in (("ok", "ok"), (otlp_mode, sentry_mode)):
            with tempfile.TemporaryDirectory(prefix="svc-faults-") as tmp:
                runs.append(
                    fault_case(
                        Path(tmp),
                        otlp_protocol=protocol,
                        otlp_mode=mode_pair[0],
                        sentry_mode=mode_pair[1],
                        rate=args.rate,
                        duration_s=args.duration,
                    )
                )
        base, report = runs
        pairs.append((base, report))
        summary = {k: v for k, v in asdict(report).items() if k != "rss_mib"}
        print(json.dumps(summary | {"healthy_p99_ms": base.load["p99_ms"], "problems": report.problems()})[:1500])
    env = environment(load_before)
    data = {
        "environment": env,
        "rate": args.rate,
        "duration_s": args.duration,
        "cases": [
            {
                "healthy": asdict(b) | {"problems": b.problems(), "rss_growth_pct": b.rss_growth_pct},
                "faulty": asdict(r) | {"problems": r.problems(), "rss_growth_pct": r.rss_growth_pct},
            }
            for b, r in pairs
        ],
    }
    markdown = _markdown(pairs, env, args.rate, args.duration)
    json_path, md_path = write_result(args.name, data, markdown, results_dir(args))
    print(f"wrote {json_path} and {md_path}")
    return 0 if not any(r.problems() or b.problems() for b, r in pairs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
