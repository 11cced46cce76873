"""Soak: N minutes (default 10) of mixed loopback load with faults, then SIGTERM; RSS must stay flat.

The load mixes every public operation with injected failures: 5 % GET /fault (FAULTS_ENABLED=true, a 500 on
purpose that Sentry must receive), invalid bodies (400) and unknown paths (404). The telemetry backends die
twice and come back (same ports, so svc's configuration never changes):

    0 %-10 %    warm-up, healthy
    10 %-25 %   outage 1: the OTLP/gRPC receiver accepts and never answers; the Sentry sink is gone (refused)
    25 %-55 %   recovered: spans and events must flow again
    55 %-75 %   outage 2: the OTLP receiver answers UNAVAILABLE (503); the Sentry sink is gone again
    75 %-100 %  recovered again

Pass: zero failed requests besides the injected ones; RSS growth under 10 %, measured from once the first
outage has filled the bounded queues (2,048 spans, 100 events: a one-off step, reported too) to the end,
through the second outage; no new metric series after the warm-up; drops counted and logged at most once a
minute; spans and events flowing in each healthy phase; exit 0 within SHUTDOWN_TIMEOUT after SIGTERM.

    uv run python -m reliability.soak --minutes 10     (what scripts/soak runs)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from harness.backends import Mode
from harness.loglines import warning_lines
from harness.mix import Call, Plan, planner
from harness.otlp_receivers import OtlpGrpcReceiver
from harness.procfs import rss_bytes
from harness.results import add_results_arguments, environment, markdown_table, results_dir, write_result
from harness.sentry_ingest import SentryReceiver
from harness.service import ServiceProcess, base_env, service_process
from reliability.backend_faults import scrape_dropped
from reliability.load import Outcome, run_load, summarize
from reliability.report import RESULTS_DIR

__all__ = ["main", "soak"]

RSS_LIMIT_PCT = 10.0
WARMUP_FRACTION = 0.10
# (name, fraction of the run where it starts, OTLP receiver mode, Sentry sink up)
PHASES: tuple[tuple[str, float, Mode, bool], ...] = (
    ("warm-up", 0.00, "ok", True),
    ("outage 1: OTLP hangs, Sentry down", 0.10, "hang", False),
    ("recovered", 0.25, "ok", True),
    ("outage 2: OTLP 503, Sentry down", 0.55, "503", False),
    ("recovered again", 0.75, "ok", True),
)
SHUTDOWN_TIMEOUT = 10.0
SEED_LINKS = 50


@dataclass(frozen=True)
class Phase:
    name: str
    start_s: float
    end_s: float
    otlp_mode: Mode
    sentry_up: bool


# Share of requests by kind: every public operation, plus injected and client-error traffic.
MIX = {
    "read": 0.30,
    "redirect": 0.15,
    "create": 0.10,
    "list": 0.05,
    "version": 0.10,
    "slow": 0.10,
    "fault": 0.05,
    "invalid": 0.05,
    "unmatched": 0.05,
    "delete-missing": 0.05,
}


def _mix(seed: int) -> Plan:
    rng = random.Random(seed)
    slugs = [f"soak-{i:03d}" for i in range(SEED_LINKS)]
    makers: dict[str, Plan] = {
        "read": lambda i: Call("GET", f"/links/{rng.choice(slugs)}"),
        "redirect": lambda i: Call("GET", f"/r/{rng.choice(slugs)}"),
        "create": lambda i: Call("POST", "/links", json={"url": f"https://example.com/soak/{i}"}),
        "list": lambda i: Call("GET", f"/links?limit={rng.randint(1, 100)}"),
        "version": lambda i: Call("GET", "/version"),
        "slow": lambda i: Call("GET", f"/slow?ms={rng.randint(5, 200)}"),
        "fault": lambda i: Call("GET", f"/fault?tag=soak{i}", injected=True),
        "invalid": lambda i: Call("POST", "/links", json={"url": "not a url", "slug": "NO"}),  # 400
        "unmatched": lambda i: Call("GET", f"/nowhere/{rng.randrange(10**9)}"),  # 404, the one "unmatched" series
        "delete-missing": lambda i: Call("DELETE", f"/links/gone-{rng.randrange(10**6)}"),  # 404 by slug
    }
    return planner(MIX, makers, rng)


def _metric_series(admin_url: str) -> int:
    text = httpx.get(f"{admin_url}/metrics", timeout=5).text
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def _sampler(
    svc: ServiceProcess, pid: int, start: float, every: float, stop: threading.Event, out: dict[str, list[Any]]
) -> None:
    next_scrape = 0.0
    while not stop.is_set():
        now = time.monotonic() - start
        rss = rss_bytes(pid)
        if rss is not None:
            out["rss"].append((round(now, 1), round(rss / 2**20, 2)))
        if now >= next_scrape:
            try:
                out["series"].append((round(now, 1), _metric_series(svc.admin_url)))
                out["dropped"].append((round(now, 1), scrape_dropped(svc.admin_url)))
            except httpx.HTTPError:
                pass
            next_scrape = now + 30
        stop.wait(every)


def soak(work_dir: Path, *, minutes: float, rate: float, seed: int = 1, rss_every_s: float = 5.0) -> dict[str, Any]:
    """Run the soak and return every figure (the caller writes them out)."""
    duration = minutes * 60
    bounds = [start for _, start, _, _ in PHASES[1:]] + [1.0]
    phases = [
        Phase(name, duration * start, duration * end, mode, up)
        for (name, start, mode, up), end in zip(PHASES, bounds, strict=True)
    ]
    samples: dict[str, list[Any]] = {"rss": [], "series": [], "dropped": []}
    with OtlpGrpcReceiver() as otlp, SentryReceiver(keep=False) as sentry:
        env = base_env(
            work_dir,
            OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint,
            SENTRY_DSN=sentry.dsn,
            FAULTS_ENABLED="true",
            SHUTDOWN_TIMEOUT=str(SHUTDOWN_TIMEOUT),
        )
        with service_process(env) as svc, httpx.Client(base_url=svc.url, timeout=10) as client:
            assert svc.proc is not None
            for i in range(SEED_LINKS):
                client.post("/links", json={"url": f"https://example.com/seed/{i}", "slug": f"soak-{i:03d}"})
            outcomes: list[Outcome] = []
            stop_sampling = threading.Event()
            start = time.monotonic()
            sampler = threading.Thread(
                target=_sampler,
                args=(svc, svc.proc.pid, start, rss_every_s, stop_sampling, samples),
                daemon=True,
            )
            sampler.start()
            loader = threading.Thread(
                target=lambda: outcomes.extend(
                    run_load(
                        svc.url,
                        _mix(seed),
                        rate=rate,
                        duration=duration,
                        max_requests=int(rate * duration) + 1,
                        concurrency=256,
                    )
                ),
                name="load",
                daemon=True,
            )
            loader.start()
            received: dict[str, tuple[int, int]] = {}  # phase -> (spans, events) received when it began
            for phase in phases[1:]:
                time.sleep(max(0.0, start + phase.start_s - time.monotonic()))
                received[phase.name] = (len(otlp.all_spans()), sentry.events_received())
                otlp.mode = phase.otlp_mode  # leaving "hang" answers the calls it held, freeing its worker threads
                if phase.sentry_up and not sentry.running:
                    sentry.start()  # the same port: svc's DSN is unchanged
                elif not phase.sentry_up:
                    sentry.stop()
            loader.join(duration + 120)
            time.sleep(2)  # one more export interval for the last spans of the last phase
            stop_sampling.set()
            sampler.join(10)
            received["end"] = (len(otlp.all_spans()), sentry.events_received())
            dropped_end = scrape_dropped(svc.admin_url)
            ended = svc.terminate(SHUTDOWN_TIMEOUT + 20)
            logs = svc.logs()

    return _results(
        phases=phases,
        outcomes=outcomes,
        samples=samples,
        logs=logs,
        minutes=minutes,
        rate=rate,
        received=received,
        dropped_end=dropped_end,
        exit_code=ended.code,
        exit_seconds=ended.seconds,
    )


def _results(
    *,
    phases: list[Phase],
    outcomes: list[Outcome],
    samples: dict[str, list[Any]],
    logs: list[dict[str, Any]],
    minutes: float,
    rate: float,
    received: dict[str, tuple[int, int]],
    dropped_end: dict[str, float],
    exit_code: int | None,
    exit_seconds: float | None,
) -> dict[str, Any]:
    duration = minutes * 60
    warmup_end = duration * WARMUP_FRACTION
    rss = samples["rss"]
    healthy = next((mib for t, mib in rss if t >= warmup_end), None)
    # The queues (2,048 spans, 100 events) fill the first time the backends die: a one-off step, bounded by
    # design. Growth is measured from once that step is over (the first recovery has settled) to the end,
    # through a second outage: a leak, or a queue that is not bounded, would show there.
    settled_at = phases[2].start_s + min(60.0, duration * 0.05)
    settled = next((mib for t, mib in rss if t >= settled_at), None)
    rss_end = rss[-1][1] if rss else None
    growth = round(100 * (rss_end - settled) / settled, 1) if rss_end and settled else None
    growth_vs_healthy = round(100 * (rss_end - healthy) / healthy, 1) if rss_end and healthy else None
    series = samples["series"]
    series_after_warmup = next((n for t, n in series if t >= warmup_end), None)
    series_end = series[-1][1] if series else None

    lines = warning_lines(logs)
    per_phase = {
        p.name: summarize([o for o in outcomes if p.start_s <= o.started < p.end_s]) | {"from_s": p.start_s}
        for p in phases
    }
    total = summarize(outcomes)
    injected = [o for o in outcomes if o.call.injected]
    problems = []
    if total["failed"]:
        failed = Counter(
            f"{o.call.method} {o.call.path.split('?')[0]} -> {o.status or o.error}" for o in outcomes if o.failed
        )
        problems.append(f"{total['failed']} failed request(s) besides the injected ones: {failed.most_common(5)}")
    if any(o.status != 500 for o in injected):
        problems.append("an injected GET /fault did not answer 500")
    if growth is None or growth >= RSS_LIMIT_PCT:
        problems.append(f"RSS grew {growth} % after the first outage settled (limit {RSS_LIMIT_PCT} %)")
    if series_end is None or series_after_warmup is None or series_end > series_after_warmup:
        problems.append(f"metric series grew after the warm-up: {series_after_warmup} -> {series_end}")
    if dropped_end.get("spans", 0) <= 0 or dropped_end.get("errors", 0) <= 0:
        problems.append(f"the dead backends' losses were not counted: {dropped_end}")
    marks = [*[p.name for p in phases[1:]], "end"]
    for phase, following in zip(phases[1:], marks[1:], strict=True):
        if phase.otlp_mode == "ok" and received[following][0] <= received[phase.name][0]:
            problems.append(f"no span reached the OTLP receiver in {phase.name!r}")
        if phase.sentry_up and received[following][1] <= received[phase.name][1]:
            problems.append(f"no event reached Sentry in {phase.name!r}")
    problems += lines.over(1 + math.ceil(minutes), f"{minutes:g} min")
    if exit_code != 0 or exit_seconds is None or exit_seconds > SHUTDOWN_TIMEOUT:
        problems.append(f"SIGTERM: exit {exit_code} after {exit_seconds} s (budget {SHUTDOWN_TIMEOUT} s)")
    return {
        "minutes": minutes,
        "rate": rate,
        "phases": [p.__dict__ for p in phases],
        "load": total,
        "per_phase": per_phase,
        "injected_faults": len(injected),
        "rss_mib": {
            "after_warmup": healthy,
            "after_first_outage": settled,
            "end": rss_end,
            "peak": max((mib for _, mib in rss), default=None),
            "growth_pct": growth,
            "growth_vs_warmup_pct": growth_vs_healthy,
            "samples": rss,
        },
        "metric_series": {"after_warmup": series_after_warmup, "end": series_end, "samples": series},
        "dropped": {"end": dropped_end, "samples": samples["dropped"]},
        "received_at_phase_start": {k: {"spans": v[0], "sentry_events": v[1]} for k, v in received.items()},
        "log_lines_warning_or_worse": dict(lines.by_logger),
        "drop_summary_lines": dict(lines.drops),
        "exit": {"code": exit_code, "seconds": exit_seconds},
        "problems": problems,
    }


def _markdown(result: dict[str, Any], env: dict[str, Any]) -> str:
    rows = [
        [
            name,
            f"{phase['from_s']:.0f} s",
            phase["requests"],
            phase["failed"],
            phase["injected"],
            phase["achieved_rps"],
            phase["p50_ms"],
            phase["p99_ms"],
        ]
        for name, phase in result["per_phase"].items()
    ]
    header = ["phase", "from", "requests", "failed", "injected 500s", "req/s", "p50 ms", "p99 ms"]
    rss = result["rss_mib"]
    verdict = "PASS" if not result["problems"] else "FAIL: " + "; ".join(result["problems"])
    return "\n\n".join(
        [
            "# Soak",
            f"{env['date']}, commit {env['commit']}, {env['cpus']} CPUs "
            f"(load average {env['load_average_1m_before']} before the run), Python {env['python']}: "
            f"{result['minutes']:g} min at {result['rate']:.0f} req/s of mixed load (every operation, 5 % injected "
            "GET /fault, 5 % 400s, 10 % 404s, 10 % GET /slow of 5-200 ms, which set the p99) while the telemetry "
            "backends die twice and come back.",
            markdown_table(header, rows),
            f"RSS: {rss['after_warmup']} MiB after the warm-up, {rss['after_first_outage']} MiB once the first "
            f"outage had filled the bounded queues, {rss['end']} MiB at the end (peak {rss['peak']}): "
            f"**{rss['growth_pct']} % growth** through the second outage (limit {RSS_LIMIT_PCT:g} %); "
            f"{rss['growth_vs_warmup_pct']} % against the warm-up, the one-off cost of full queues. "
            f"Metric series: {result['metric_series']['after_warmup']} after the warm-up, "
            f"{result['metric_series']['end']} at the end.",
            f"Dropped while the backends were down: {result['dropped']['end']}. Received (spans, Sentry events) "
            f"when each phase began: {result['received_at_phase_start']}. Warning lines by logger: "
            f"{result['log_lines_warning_or_worse']}. SIGTERM: exit {result['exit']['code']} in "
            f"{result['exit']['seconds']} s.",
            f"Verdict: **{verdict}**",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Soak svc under mixed load with dying telemetry backends.")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=300.0, help="requests per second (about 1/4 of capacity)")
    parser.add_argument("--seed", type=int, default=1)
    add_results_arguments(parser, RESULTS_DIR)
    args = parser.parse_args(argv)
    load_before = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="svc-soak-") as tmp:
        result = soak(Path(tmp), minutes=args.minutes, rate=args.rate, seed=args.seed)
    env = environment(load_before)
    data = {"environment": env, **result}
    json_path, md_path = write_result("soak", data, _markdown(result, env), results_dir(args))
    summary = {k: v for k, v in result.items() if k not in ("rss_mib", "metric_series", "dropped", "per_phase")}
    print(json.dumps(summary | {"rss_growth_pct": result["rss_mib"]["growth_pct"]}, indent=1)[:3000])
    print(f"wrote {json_path} and {md_path}")
    return 0 if not result["problems"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
