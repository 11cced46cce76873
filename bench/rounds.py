"""The whole solo benchmark: every selected variant once a round, the order rotated per round, then the RSS check.

Every run starts a fresh server process, waits for its first 200, warms it up, then measures one wrk run
while reading the server's CPU time and peak RSS from /proc. Variants are interleaved (each round runs every
variant once, the order rotated per round) so drift on the machine hits all of them alike.
"""

from __future__ import annotations

import shutil
import time
from typing import Any

from bench.context import open_context
from bench.measure import measure, summarize
from bench.rss import rss_check
from bench.settings import Settings
from bench.variants import Runs, check_keys, variant_of

__all__ = ["run_benchmark"]


def run_benchmark(settings: Settings) -> dict[str, Any]:
    """Every selected variant, interleaved over the rounds; then the RSS check if asked."""
    say = settings.progress
    check_keys(settings.variants)
    keys = list(settings.variants)
    notes: list[str] = []
    if shutil.which("go") is None:
        for key in [k for k in keys if variant_of(k).runs is Runs.GO]:
            keys.remove(key)
            notes.append(f"variant ({key}) skipped: Go is not installed")
    result: dict[str, Any] = {"notes": notes, "variants": {}, "rss": {}}
    with open_context(settings, [*keys, *(settings.rss_variants if settings.rss_seconds else [])]) as ctx:
        runs: dict[str, list[dict[str, Any]]] = {k: [] for k in keys}
        started = time.monotonic()
        for round_no in range(settings.rounds):
            shift = round_no % max(len(keys), 1)
            for key in keys[shift:] + keys[:shift]:
                run = measure(ctx, key, round_no)
                runs[key].append(run)
                say(
                    f"[{time.monotonic() - started:6.0f}s] round {round_no + 1}/{settings.rounds} {key:<12} "
                    f"{run['rps']:>8.0f} req/s  p99 {run['latency_ms']['p99']:7.2f} ms  "
                    f"cpu {run['cpu_us_per_request']:6.1f} us/req  rss {run['peak_rss_mib']:6.1f} MiB  "
                    f"ready {run['startup_s']:.2f}s"
                )
        for key in keys:
            variant = variant_of(key)
            result["variants"][key] = {
                "label": variant.label,
                "description": variant.description,
                "summary": summarize(runs[key]),
                "runs": runs[key],
            }
        if settings.rss_seconds > 0:
            for key in settings.rss_variants:
                say(f"RSS check: {key} under load for {settings.rss_seconds} s")
                check = rss_check(ctx, key)
                result["rss"][key] = {"label": variant_of(key).label, **check}
                say(f"RSS check: {key} growth {check['growth_mib']} MiB, flat={check['flat']}")
    return result
