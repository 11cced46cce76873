"""The RSS check: one variant under load for minutes, VmRSS sampled every second; flat means no growth."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from typing import Any

from bench.context import Context
from bench.heap import heap_stats, install_hook
from bench.variants import Runs, variant_of
from bench.wrk import parse_wrk, run_wrk, start_wrk
from harness.procfs import RssSampler, memory_kib

__all__ = ["RSS_FLAT_MIB", "rss_check", "rss_verdict"]

RSS_FLAT_MIB = 4.0


def rss_check(ctx: Context, key: str) -> dict[str, Any]:
    """Load the variant for rss_seconds, sampling VmRSS every second; flat means no growth after warm-up."""
    s = ctx.settings
    # Python servers get the heap probe (a SIGUSR1 handler); the Go binary would die of the signal.
    heap_dir = None if variant_of(key).runs is Runs.GO else ctx.workdir / "heap"
    server, startup = ctx.start(key, "rss", install_hook(heap_dir) if heap_dir else None)
    heap: dict[str, Any] = {}
    try:
        port = server.launch.port
        if s.warmup > 0:
            run_wrk(port, s.path, s.warmup, s.connections, s.load_cpus)
        with RssSampler(server.proc.pid, every=1.0) as sampler:
            start = time.monotonic()
            load = start_wrk(port, s.path, s.rss_seconds, s.connections, s.load_cpus)
            # The heap at the two points the RSS verdict compares: the end of the first quarter and the end.
            for point, at in (("start", s.rss_seconds / 4), ("end", s.rss_seconds - 2)):
                while load.poll() is None and time.monotonic() - start < at:
                    time.sleep(0.1)  # waiting for the point; the sampler keeps its own pace
                if heap_dir is not None and load.poll() is None:
                    heap[point] = heap_stats(server.proc.pid, heap_dir)
            load.wait(s.rss_seconds + 60)
        samples = sampler.samples
        wrk = parse_wrk(load.stdout.read() if load.stdout is not None else "")
        dropped = server.dropped_spans()
        hwm = memory_kib(server.pids(), "VmHWM") / 1024
    finally:
        stop_s, killed = ctx.finish(server)
    return {
        "variant": key,
        **rss_verdict(samples),
        "requests": int(wrk["requests"]),
        "errors": int(wrk["status_errors"]),
        "spans_dropped": dropped,
        "peak_rss_mib": round(hwm, 1),
        "heap_start": heap.get("start"),
        "heap_end": heap.get("end"),
        "startup_s": round(startup, 3),
        "stop_s": round(stop_s, 3),
        "killed_on_stop": killed,
        "samples": samples,
    }


def rss_verdict(samples: Sequence[tuple[float, float]]) -> dict[str, Any]:
    """Growth from the end of the first quarter (after warm-up) to the end, and the slope of the second half."""
    if len(samples) < 2:
        return {"rss_start_mib": None, "rss_end_mib": None, "growth_mib": None, "slope_mib_per_min": None, "flat": None}
    quarter = samples[len(samples) // 4]
    end = samples[-1]
    half = samples[len(samples) // 2 :]
    slope = 0.0
    if len(half) >= 2:
        xs = [t for t, _ in half]
        ys = [r for _, r in half]
        mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
        var = sum((x - mean_x) ** 2 for x in xs)
        if var > 0:
            slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / var * 60
    growth = end[1] - quarter[1]
    return {
        "rss_start_mib": round(quarter[1], 1),
        "rss_end_mib": round(end[1], 1),
        "growth_mib": round(growth, 1),
        "slope_mib_per_min": round(slope, 2),
        "flat": growth <= RSS_FLAT_MIB,
    }
