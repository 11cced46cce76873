"""Shutdown under load: SIGTERM while a bounded loopback load runs at about half of svc's capacity.

What must hold: no request the service accepted fails, the process exits 0 within SHUTDOWN_TIMEOUT, and the
spans of the requests it completed reach the OTLP receiver.

Counting properly: every request carries its own x-request-id and svc writes it on its access line, so
*accepted* means "the service logged it". A request that found the listener closed (refused) or whose
connection was closed before svc read it (an idle keep-alive connection closed at shutdown, or a connection
still in the kernel's accept queue) never reached svc and is not a failure of an accepted request; it is
counted separately. A response that arrived but was never logged would mean lost log lines: that is a failure.

    uv run python -m reliability.shutdown --rounds 3      (what scripts/shutdown-under-load runs)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from harness.mix import Call
from harness.otlp_receivers import OtlpGrpcReceiver
from harness.results import add_results_arguments, environment, markdown_table, results_dir, write_result
from harness.service import base_env, service_process
from reliability.load import Outcome, closed_loop_capacity, run_load, summarize, wrk_capacity
from reliability.report import RESULTS_DIR

__all__ = ["ShutdownReport", "main", "shutdown_under_load"]

SEED_LINKS = 20


@dataclass
class ShutdownReport:
    """One SIGTERM-under-load run, counted request by request."""

    capacity_rps: float
    wrk_capacity_rps: float | None
    target_rps: float
    load: dict[str, Any]
    sigterm_after_s: float
    shutdown_drain_s: float
    shutdown_timeout_s: float
    exit_code: int | None
    exit_seconds: float | None
    accepted: int
    accepted_failed: list[str] = field(default_factory=list)
    in_flight_at_sigterm: int = 0
    completed_after_sigterm: int = 0
    not_accepted: dict[str, int] = field(default_factory=dict)
    answered_but_not_logged: list[str] = field(default_factory=list)
    traced_completed: int = 0
    spans_missing: list[str] = field(default_factory=list)
    readyz_503_after_s: float | None = None
    slow_ms_max: int = 0

    def problems(self) -> list[str]:
        """Every way this run broke the promise; empty when it kept it."""
        found = []
        if self.accepted_failed:
            found.append(f"{len(self.accepted_failed)} accepted request(s) failed: {self.accepted_failed[:5]}")
        if self.answered_but_not_logged:
            found.append(f"{len(self.answered_but_not_logged)} answered request(s) missing from the access log")
        if self.exit_code != 0:
            found.append(f"exit code {self.exit_code}, not 0")
        budget = self.shutdown_drain_s + self.shutdown_timeout_s
        if self.exit_seconds is None or self.exit_seconds > budget:
            found.append(f"exit took {self.exit_seconds} s, over SHUTDOWN_DRAIN + SHUTDOWN_TIMEOUT = {budget} s")
        if self.spans_missing:
            found.append(f"{len(self.spans_missing)} completed request(s) without an exported span")
        return found


def _plan(slugs: list[str], slow_ms: tuple[int, int], seed: int) -> tuple[Any, Any]:
    """(CPU-bound mix for calibration, load mix: the same plus /slow requests that are in flight at SIGTERM)."""
    rng = random.Random(seed)

    def cpu(index: int) -> Call:
        roll = index % 10
        if roll < 5:
            return Call("GET", f"/links/{slugs[index % len(slugs)]}")
        if roll < 8:
            return Call("GET", "/version")
        return Call("POST", "/links", json={"url": f"https://example.com/load/{index}"})

    def mixed(index: int) -> Call:
        if index % 10 < 4:
            return Call("GET", f"/slow?ms={rng.randint(*slow_ms)}")
        return cpu(index)

    return cpu, mixed


def _poll_readyz(url: str, stop: threading.Event, start: float, seen: dict[str, float]) -> None:
    with httpx.Client(timeout=1) as client:
        while not stop.is_set():
            try:
                if client.get(f"{url}/readyz").status_code == 503 and "first_503" not in seen:
                    seen["first_503"] = time.monotonic() - start
            except httpx.HTTPError:
                return
            time.sleep(0.02)


def shutdown_under_load(
    work_dir: Path,
    *,
    calibrate_s: float = 1.5,
    sigterm_after_s: float = 2.0,
    shutdown_drain_s: float = 0.0,
    shutdown_timeout_s: float = 5.0,
    slow_ms: tuple[int, int] = (50, 400),
    load_fraction: float = 0.5,
    concurrency: int = 256,
    seed: int = 1,
) -> ShutdownReport:
    """Start svc (a real process) with a healthy OTLP receiver, load it at load_fraction of its measured
    capacity, send SIGTERM after sigterm_after_s, and account for every request."""
    with OtlpGrpcReceiver() as otlp:
        env = base_env(
            work_dir,
            OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint,
            SHUTDOWN_DRAIN=str(shutdown_drain_s),
            SHUTDOWN_TIMEOUT=str(shutdown_timeout_s),
        )
        with service_process(env) as svc, httpx.Client(base_url=svc.url, timeout=10) as client:
            slugs = [f"seed-{i:03d}" for i in range(SEED_LINKS)]
            for slug in slugs:
                assert client.post("/links", json={"url": f"https://example.com/{slug}", "slug": slug}).is_success
            cpu, mixed = _plan(slugs, slow_ms, seed)
            # Capacity on the CPU-bound part of the mix, measured by the same client that will send the load
            # (wrk, when installed, is recorded next to it as a second opinion on one route).
            capacity = closed_loop_capacity(svc.url, cpu, calibrate_s, concurrency=32)
            wrk_rps = wrk_capacity(f"{svc.url}/links/{slugs[0]}", seconds=max(1.0, calibrate_s))
            rate = capacity * load_fraction
            exited = threading.Event()
            outcomes: list[Outcome] = []
            duration = sigterm_after_s + shutdown_drain_s + shutdown_timeout_s + 2

            def load() -> None:
                outcomes.extend(
                    run_load(
                        svc.url,
                        mixed,
                        rate=rate,
                        duration=duration,
                        max_requests=int(rate * duration) + 1,
                        concurrency=concurrency,
                        stop=exited.is_set,
                    )
                )

            loader = threading.Thread(target=load, name="load", daemon=True)
            start = time.monotonic()
            loader.start()
            time.sleep(sigterm_after_s)
            readyz: dict[str, float] = {}
            poll_stop = threading.Event()
            poller = threading.Thread(target=_poll_readyz, args=(svc.url, poll_stop, start, readyz), daemon=True)
            poller.start()
            ended = svc.terminate(shutdown_drain_s + shutdown_timeout_s + 15)
            exited.set()
            poll_stop.set()
            loader.join(60)
            poller.join(5)
            logs = svc.logs()
        received = {span.trace_id for span in otlp.all_spans()}

    sigterm_rel = ended.signalled_at - start
    report = ShutdownReport(
        capacity_rps=round(capacity, 1),
        wrk_capacity_rps=round(wrk_rps, 1) if wrk_rps else None,
        target_rps=round(rate, 1),
        load=summarize(outcomes),
        sigterm_after_s=round(sigterm_rel, 3),
        shutdown_drain_s=shutdown_drain_s,
        shutdown_timeout_s=shutdown_timeout_s,
        exit_code=ended.code,
        exit_seconds=ended.seconds,
        accepted=0,
        readyz_503_after_s=round(readyz["first_503"] - sigterm_rel, 3) if "first_503" in readyz else None,
        slow_ms_max=slow_ms[1],
    )
    _account(report, outcomes, logs, received, sigterm_rel)
    return report


def _account(
    report: ShutdownReport, outcomes: list[Outcome], logs: list[dict[str, Any]], received: set[str], sigterm: float
) -> None:
    """Sort every request into accepted (logged by svc) or not, and check each accepted one."""
    logged = {d["http.request.id"]: d for d in logs if d.get("event.dataset") == "svc.access"}
    not_accepted: Counter[str] = Counter()
    for o in outcomes:
        line = logged.get(o.request_id)
        if line is None:
            if o.status is not None:
                report.answered_but_not_logged.append(o.request_id)
            elif o.error in ("refused", "no-response"):
                not_accepted[o.error] += 1
            else:  # a cut-short response or a timeout: something the server had started on
                report.accepted_failed.append(f"{o.request_id} {o.call.method} {o.call.path}: {o.error}")
            continue
        report.accepted += 1
        if o.failed or line["http.response.status_code"] >= 500:
            report.accepted_failed.append(
                f"{o.request_id} {o.call.method} {o.call.path}: {o.error or o.status} "
                f"(logged {line['http.response.status_code']})"
            )
            continue
        if o.started < sigterm < o.started + o.latency:
            report.in_flight_at_sigterm += 1
        if o.started + o.latency > sigterm:
            report.completed_after_sigterm += 1
        if o.trace_id is not None and o.sampled:
            report.traced_completed += 1
            if o.trace_id not in received:
                report.spans_missing.append(o.trace_id)
    report.not_accepted = dict(not_accepted)


def _markdown(reports: list[ShutdownReport], env: dict[str, Any]) -> str:
    rows = [
        [
            i + 1,
            r.capacity_rps,
            r.target_rps,
            r.load["achieved_rps"],
            r.load["requests"],
            r.accepted,
            r.in_flight_at_sigterm,
            len(r.accepted_failed),
            r.not_accepted.get("refused", 0),
            r.not_accepted.get("no-response", 0),
            f"{r.exit_code} in {r.exit_seconds} s",
            f"{r.traced_completed - len(r.spans_missing)}/{r.traced_completed}",
            r.load["p99_ms"],
        ]
        for i, r in enumerate(reports)
    ]
    header = [
        "round",
        "capacity req/s",
        "target req/s",
        "achieved req/s",
        "requests",
        "accepted",
        "in flight at SIGTERM",
        "accepted & failed",
        "refused (not accepted)",
        "closed unread (not accepted)",
        "exit",
        "spans exported",
        "p99 ms",
    ]
    first = reports[0]
    problems = [p for r in reports for p in r.problems()]
    verdict = "PASS" if not problems else "FAIL: " + "; ".join(problems)
    return "\n\n".join(
        [
            "# Shutdown under load",
            f"{env['date']}, commit {env['commit']}, {env['cpus']} CPUs "
            f"(load average {env['load_average_1m_before']} before the run), Python {env['python']}. "
            f"SIGTERM after {first.sigterm_after_s:.1f} s of load at "
            f"{int(100 * first.target_rps / first.capacity_rps)} % of capacity; "
            f"SHUTDOWN_DRAIN={first.shutdown_drain_s} s, SHUTDOWN_TIMEOUT={first.shutdown_timeout_s} s; "
            f"40 % of requests are GET /slow (50-{first.slow_ms_max} ms), so many are in flight when the signal "
            "lands. Accepted = svc wrote the request's access line; refused and closed-unread requests never "
            "reached svc.",
            markdown_table(header, rows),
            f"/readyz answered 503 {first.readyz_503_after_s} s after SIGTERM (first round). Verdict: **{verdict}**",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="SIGTERM svc under half-capacity load and count every request.")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calibrate", type=float, default=5.0, help="seconds of capacity measurement")
    parser.add_argument("--sigterm-after", type=float, default=20.0, help="seconds of load before SIGTERM")
    parser.add_argument("--drain", type=float, default=2.0, help="SHUTDOWN_DRAIN")
    parser.add_argument("--timeout", type=float, default=10.0, help="SHUTDOWN_TIMEOUT")
    parser.add_argument("--slow-max-ms", type=int, default=2000, help="longest GET /slow in the mix")
    parser.add_argument("--concurrency", type=int, default=1024, help="most requests in flight at once")
    add_results_arguments(parser, RESULTS_DIR)
    args = parser.parse_args(argv)
    load_before = round(os.getloadavg()[0], 2)
    reports = []
    for round_no in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="svc-shutdown-") as tmp:
            report = shutdown_under_load(
                Path(tmp),
                calibrate_s=args.calibrate,
                sigterm_after_s=args.sigterm_after,
                shutdown_drain_s=args.drain,
                shutdown_timeout_s=args.timeout,
                slow_ms=(50, args.slow_max_ms),
                concurrency=args.concurrency,
                seed=round_no,
            )
        reports.append(report)
        print(f"round {round_no + 1}: {json.dumps(asdict(report) | {'problems': report.problems()})[:2000]}")
    env = environment(load_before)
    data = {"environment": env, "rounds": [asdict(r) | {"problems": r.problems()} for r in reports]}
    json_path, md_path = write_result("shutdown-under-load", data, _markdown(reports, env), results_dir(args))
    print(f"wrote {json_path} and {md_path}")
    return 0 if not any(r.problems() for r in reports) else 1


if __name__ == "__main__":
    raise SystemExit(main())
