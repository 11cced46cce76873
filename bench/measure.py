"""One solo run: the variant alone on the server core under wrk, its CPU time and peak RSS read from /proc."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from bench.context import Context
from bench.settings import Settings
from bench.wrk import run_wrk, wrk_errors
from harness.procfs import core_busy, cpu_times, machine_busy, memory_kib

__all__ = ["EXPORT_INTERVAL_S", "measure", "summarize", "wait_quiet"]

EXPORT_INTERVAL_S = 1.2  # one batch export interval, so the receiver has the spans of the last batch


def wait_quiet(settings: Settings) -> tuple[float, float]:
    """Wait for other load on the machine to drop; returns (seconds waited, CPUs busy when we went ahead)."""
    start = time.monotonic()
    while True:
        busy = machine_busy()
        waited = time.monotonic() - start
        if busy < settings.quiet_threshold or waited >= settings.quiet_timeout:
            return round(waited, 1), round(busy, 2)


def measure(ctx: Context, key: str, round_no: int) -> dict[str, Any]:
    """Start the variant, warm it up, measure one wrk run, stop it."""
    s = ctx.settings
    waited, busy = wait_quiet(s)
    server, startup = ctx.start(key, f"r{round_no}")
    try:
        port = server.launch.port
        if s.warmup > 0:
            run_wrk(port, s.path, s.warmup, s.connections, s.load_cpus)
        pids = server.pids()
        (user0, sys0), lines0, dropped0 = cpu_times(pids), server.log_lines(), server.dropped_spans()
        spans0, envelopes0 = ctx.backends.spans.value, ctx.backends.envelopes.value
        core0 = core_busy(s.server_cpu)
        wrk = run_wrk(port, s.path, s.duration, s.connections, s.load_cpus)
        core1 = core_busy(s.server_cpu)
        pids = server.pids()
        user1, sys1 = cpu_times(pids)
        cpu0, cpu1 = user0 + sys0, user1 + sys1
        hwm_kib = memory_kib(pids, "VmHWM")
        time.sleep(EXPORT_INTERVAL_S)
        lines1, dropped1 = server.log_lines(), server.dropped_spans()
        spans1, envelopes1 = ctx.backends.spans.value, ctx.backends.envelopes.value
    finally:
        stop_s, killed = ctx.finish(server)
    requests = int(wrk["requests"])
    seconds = wrk["duration_us"] / 1e6
    per_request = max(requests, 1)
    return {
        "variant": key,
        "round": round_no,
        "requests": requests,
        "seconds": round(seconds, 3),
        "rps": round(requests / seconds, 1),
        "errors": wrk_errors(wrk),
        "latency_ms": {k: wrk[f"{k}_us"] / 1000 for k in ("mean", "p50", "p90", "p99", "p999", "max")},
        "cpu_seconds": round(cpu1 - cpu0, 3),
        "cpu_us_per_request": round((cpu1 - cpu0) * 1e6 / per_request, 1),
        "cpu_utilization": round((cpu1 - cpu0) / seconds, 3),
        "cpu_system_share": round((sys1 - sys0) / max(cpu1 - cpu0, 1e-9), 3),
        # Other processes on the server's core while measured (0 on a quiet machine): they steal its time.
        "foreign_load_on_server_core": round(max(0.0, (core1 - core0) - (cpu1 - cpu0)) / seconds, 3),
        "peak_rss_mib": round(hwm_kib / 1024, 1),
        "startup_s": round(startup, 3),
        "stop_s": round(stop_s, 3),
        "killed_on_stop": killed,
        "quiet_wait_s": waited,
        "machine_busy_before": busy,
        # Sanity checks: that the telemetry really happened while measured.
        "log_lines_per_request": round((lines1 - lines0) / per_request, 3),
        "spans_received_per_request": round((spans1 - spans0) / per_request, 3),
        "spans_dropped": None if dropped0 is None or dropped1 is None else dropped1 - dropped0,
        "sentry_envelopes": envelopes1 - envelopes0,
    }


def summarize(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Medians over rounds (peak RSS: the largest)."""

    def med(get: Callable[[dict[str, Any]], float]) -> float:
        return round(statistics.median(get(r) for r in runs), 3)

    return {
        "rounds": len(runs),
        "rps": med(lambda r: r["rps"]),
        "rps_min": min(r["rps"] for r in runs),
        "rps_max": max(r["rps"] for r in runs),
        "p50_ms": med(lambda r: r["latency_ms"]["p50"]),
        "p99_ms": med(lambda r: r["latency_ms"]["p99"]),
        "cpu_us_per_request": med(lambda r: r["cpu_us_per_request"]),
        "cpu_utilization": med(lambda r: r["cpu_utilization"]),
        "cpu_system_share": med(lambda r: r["cpu_system_share"]),
        "foreign_load_on_server_core": med(lambda r: r["foreign_load_on_server_core"]),
        "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
        "startup_s": med(lambda r: r["startup_s"]),
        "startup_max_s": max(r["startup_s"] for r in runs),
        "stop_max_s": max(r["stop_s"] for r in runs),
        "killed_on_stop": any(r["killed_on_stop"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
        "log_lines_per_request": med(lambda r: r["log_lines_per_request"]),
        "spans_received_per_request": med(lambda r: r["spans_received_per_request"]),
        "spans_dropped": sum(r["spans_dropped"] or 0 for r in runs) if runs[0]["spans_dropped"] is not None else None,
    }
