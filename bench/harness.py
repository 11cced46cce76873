"""The benchmark harness: start each variant pinned to one core, load it with wrk from the other, measure.

Every run starts a fresh server process, waits for its first 200, warms it up, then measures one wrk run
while reading the server's CPU time and peak RSS from /proc. Variants are interleaved (each round runs every
variant once, the order rotated per round) so drift on the machine hits all of them alike.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bench.heap import heap_stats, install_hook
from bench.postgres import PG_VARIANTS, postgres_for
from bench.receivers import Backends, free_port, running_backends
from svc.sqlite_store import SCHEMA

__all__ = [
    "DEFAULT_VARIANTS",
    "VARIANTS",
    "Settings",
    "Variant",
    "run_benchmark",
    "variant_of",
]

REPO = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
WRK_SCRIPT = BENCH / "wrk_report.lua"
SLUG = "bench-link"
DEFAULT_PATH = f"/links/{SLUG}"
CLK_TCK = os.sysconf("SC_CLK_TCK")
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0


@dataclass(frozen=True, slots=True)
class Variant:
    """One server configuration under test."""

    key: str
    label: str
    description: str


VARIANTS: dict[str, Variant] = {
    v.key: v
    for v in (
        Variant(
            "a",
            "(a) bare Litestar",
            "svc's route handlers in svc's Litestar app, no middleware, no telemetry; uvicorn+uvloop+httptools "
            "and svc's GC settings, as python -m svc runs",
        ),
        Variant(
            "b",
            "(b) svc, full telemetry",
            "python -m svc: 100 % of traces exported over OTLP/gRPC to a live receiver, one access line per "
            "request to a file, RED metrics, Sentry armed (DSN to a live sink)",
        ),
        Variant("c", "(c) svc, 10 % sampling", "as (b) with OTEL_TRACES_SAMPLER=parentbased_traceidratio, ARG=0.1"),
        Variant("c0", "(c0) svc, tracing on, 0 % sampled", "as (c) with OTEL_TRACES_SAMPLER_ARG=0: no span recorded"),
        Variant(
            "d-refused",
            "(d) svc, backends refusing",
            "as (b) with the OTLP and Sentry endpoints on a port nothing listens on (connection refused)",
        ),
        Variant(
            "d-blackhole",
            "(d) svc, backends blackholed",
            "as (b) with the OTLP and Sentry endpoints on a listener that accepts and never answers",
        ),
        Variant(
            "e",
            "(e) naive stack",
            "the same handlers with Litestar's stock OpenTelemetry plugin, Prometheus middleware, LoggingConfig and "
            "LoggingMiddleware, and sentry_sdk.init (LitestarIntegration auto-enabled), exporting to the same receiver",
        ),
        Variant(
            "f",
            "(f) Go net/http + slog",
            "bench/go: stdlib net/http, log/slog JSON access line per request, same SQLite query (modernc.org/sqlite)",
        ),
        Variant("a-granian", "(a') bare Litestar on granian", "as (a) served by granian's embedded server"),
        Variant("a-default-gc", "(a') bare Litestar, default GC", "as (a) with CPython's default GC settings"),
        Variant("b-noexport", "(b-) svc, spans not exported", "as (b) without an OTLP endpoint: spans made, not sent"),
        Variant("b-nolog", "(b-) svc, no access line", "as (b) with LOG_LEVEL=warning"),
        Variant("b-notrace", "(b-) svc, tracing off", "as (b) with OTEL_SDK_DISABLED=true"),
        Variant("b-nosentry", "(b-) svc, Sentry off", "as (b) without SENTRY_DSN"),
        Variant("b-default-gc", "(b') svc, default GC", "as (b) started through svc.main.run without tune_gc()"),
        Variant(
            "b-middleware",
            "(b-) svc, middleware and metrics only",
            "as (b) with tracing off, no access line, no Sentry: the request id, RED metrics and one extra ASGI pass",
        ),
        Variant("b-granian", "(b') svc on granian", "as (b) (public app only) served by granian's embedded server"),
        Variant(
            "a-pg",
            "(a) bare Litestar, PostgreSQL",
            "as (a) on PostgreSQL through svc's asyncpg store (pool of 10) instead of the SQLite file; a throwaway "
            "PostgreSQL 15 cluster on loopback, fsync on, pinned to the load cores",
        ),
        Variant(
            "a-pg-psycopg",
            "(a) bare Litestar, PostgreSQL via psycopg 3",
            "as (a-pg) through psycopg 3 (binary) and psycopg_pool instead of asyncpg (bench/psycopg_store.py)",
        ),
        Variant("b-pg", "(b) svc, full telemetry, PostgreSQL", "as (b) with DATABASE_URL: svc's asyncpg store"),
    )
}
DEFAULT_VARIANTS = ("a", "b", "c", "d-refused", "d-blackhole", "e", "f")
SVC_MODES = {
    "b": "live",
    "c": "live",
    "c0": "live",
    "d-refused": "refused",
    "d-blackhole": "blackhole",
    "b-granian": "live",
    "b-pg": "live",
    "b-noexport": "live",
    "b-nolog": "live",
    "b-notrace": "live",
    "b-nosentry": "live",
    "b-default-gc": "live",
    "b-middleware": "live",
}
# Diagnostic variants: (b) with one part of the telemetry taken away, to price each part.
SVC_ENV_OVERRIDES: dict[str, dict[str, str | None]] = {
    "c0": {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"},
    "b-noexport": {"OTEL_EXPORTER_OTLP_ENDPOINT": None},
    "b-nolog": {"LOG_LEVEL": "warning"},
    "b-notrace": {"OTEL_SDK_DISABLED": "true"},
    "b-nosentry": {"SENTRY_DSN": None},
    "b-middleware": {"OTEL_SDK_DISABLED": "true", "LOG_LEVEL": "warning", "SENTRY_DSN": None},
}


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


# --- /proc readings -------------------------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()  # fields from 3 (state) on; comm may hold spaces


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants (granian and wrappers may fork)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            children.setdefault(int(_stat_fields(int(entry.name))[1]), []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def cpu_times(pids: Sequence[int]) -> tuple[float, float]:
    """User and system CPU time of the processes (all their threads), in seconds."""
    user = system = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError):
            fields = _stat_fields(pid)
            user += int(fields[11])
            system += int(fields[12])
    return user / CLK_TCK, system / CLK_TCK


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time of the processes (all their threads), in seconds."""
    return sum(cpu_times(pids))


def status_kib(pids: Sequence[int], key: str) -> int:
    """Sum of a /proc/<pid>/status memory field (VmRSS, VmHWM) in KiB."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    total += int(line.split()[1])
    return total


def core_busy(cpu: int) -> float:
    """Non-idle seconds of one CPU since boot, from /proc/stat."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            ticks = [int(v) for v in line.split()[1:]]
            idle = ticks[3] + ticks[4]  # idle + iowait
            return (sum(ticks[:8]) - idle) / CLK_TCK  # user..steal; guest time is already in user
    raise RuntimeError(f"cpu{cpu} not in /proc/stat")


def machine_busy(seconds: float = 0.5) -> float:
    """CPUs' worth of non-idle time over a short window (0.0 on an idle machine)."""
    cpus = sorted(os.sched_getaffinity(0))
    before = sum(core_busy(c) for c in cpus)
    time.sleep(seconds)
    return (sum(core_busy(c) for c in cpus) - before) / seconds


# --- variants as processes ------------------------------------------------------------------------------------


@dataclass
class Launch:
    """How to start one variant."""

    argv: list[str]
    env: dict[str, str]
    port: int
    admin_port: int | None = None
    cwd: Path = REPO


BASELINE_SUFFIX = "@base"


def variant_of(key: str) -> Variant:
    """The variant for key; `<svc variant>@base` is that variant run from the --baseline tree's svc."""
    if key.endswith(BASELINE_SUFFIX):
        plain = VARIANTS[key.removesuffix(BASELINE_SUFFIX)]
        return Variant(key, f"{plain.label} [baseline]", f"{plain.description}; svc imported from the baseline tree")
    return VARIANTS[key]


def _base_env() -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    if "HOME" in os.environ:
        env["HOME"] = os.environ["HOME"]
    return env


def launch_for(
    key: str,
    db: Path,
    backends: Backends,
    go_binary: Path | None,
    baseline: Path | None = None,
    postgres_url: str | None = None,
) -> Launch:
    """The command line and environment of variant key on fresh ports."""
    if key.endswith(BASELINE_SUFFIX):
        if baseline is None or key.removesuffix(BASELINE_SUFFIX) not in SVC_MODES:
            raise SystemExit(f"{key}: needs --baseline and an svc variant")
        launch = launch_for(key.removesuffix(BASELINE_SUFFIX), db, backends, go_binary, postgres_url=postgres_url)
        launch.env["PYTHONPATH"] = str(baseline)
        launch.cwd = baseline
        return launch
    port = free_port()
    env = _base_env()
    py = sys.executable
    if key in ("a", "a-granian", "a-default-gc"):
        server = "granian" if key == "a-granian" else "uvicorn"
        argv = [py, "-m", "bench.servers", "bare", "--port", str(port), "--db", str(db), "--server", server]
        if key == "a-default-gc":
            argv.append("--default-gc")
        return Launch(argv, env, port)
    if key in PG_VARIANTS:
        return _pg_launch(key, db, backends, port, env, postgres_url)
    if key == "e":
        argv = [py, "-m", "bench.servers", "naive", "--port", str(port), "--db", str(db)]
        argv += ["--otlp", backends.otlp_endpoint("live"), "--sentry-dsn", backends.sentry_dsn("live")]
        return Launch(argv, env, port)
    if key == "f":
        if go_binary is None:
            raise RuntimeError("variant f needs Go (go build failed or go is not installed)")
        env.update({"PORT": str(port), "DATABASE_PATH": str(db)})
        return Launch([str(go_binary)], env, port)
    return _svc_launch(key, db, backends, port, env)


def _pg_launch(
    key: str, db: Path, backends: Backends, port: int, env: dict[str, str], postgres_url: str | None
) -> Launch:
    if postgres_url is None:
        raise RuntimeError(f"variant {key} needs PostgreSQL (bench/postgres.py)")
    if key == "b-pg":
        launch = _svc_launch(key, db, backends, port, env)
        launch.env["DATABASE_URL"] = postgres_url
        return launch
    driver = "psycopg" if key == "a-pg-psycopg" else "asyncpg"
    argv = [sys.executable, "-m", "bench.servers", "bare", "--port", str(port), "--database-url", postgres_url]
    return Launch([*argv, "--driver", driver], env, port)


def _svc_launch(key: str, db: Path, backends: Backends, port: int, env: dict[str, str]) -> Launch:
    mode = SVC_MODES[key]
    py = sys.executable
    admin_port = free_port()
    env.update(
        {
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "ADMIN_HOST": "127.0.0.1",
            "ADMIN_PORT": str(admin_port),
            "DATABASE_PATH": str(db),
            "LOG_LEVEL": "info",
            "LOG_FORMAT": "json",
            "SHUTDOWN_TIMEOUT": "5",
            "DEPLOYMENT_ENVIRONMENT": "bench",
            "OTEL_EXPORTER_OTLP_ENDPOINT": backends.otlp_endpoint(mode),
            "SENTRY_DSN": backends.sentry_dsn(mode),
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio" if key == "c" else "parentbased_always_on",
            "OTEL_TRACES_SAMPLER_ARG": "0.1" if key == "c" else "1.0",
        }
    )
    for name, value in SVC_ENV_OVERRIDES.get(key, {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    if key == "b-default-gc":
        script = "import os, sys; from svc.main import run; sys.exit(run(['svc'], os.environ.get, sys.stdout))"
        return Launch([py, "-c", script], env, port, admin_port)
    if key == "b-granian":
        return Launch([py, "-m", "bench.servers", "svc", "--port", str(port), "--server", "granian"], env, port)
    return Launch([py, "-m", "svc"], env, port, admin_port)


def _get(port: int, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class Server:
    """One variant's server process, pinned to a core, its stdout and stderr in a log file."""

    def __init__(self, launch: Launch, cpu: int, log_path: Path) -> None:
        self.launch = launch
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.started = time.monotonic()
        # taskset execs the command: the pid is the server's own.
        self.proc = subprocess.Popen(
            ["taskset", "-c", str(cpu), *launch.argv],
            env=launch.env,
            cwd=launch.cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, path: str) -> float:
        """Seconds from spawn to the first 200 on path."""
        deadline = self.started + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if _get(self.launch.port, path, timeout=1.0)[0] == 200:
                    return time.monotonic() - self.started
            time.sleep(0.005)
        raise RuntimeError(f"server not ready within {READY_TIMEOUT} s:\n{self.log_tail()}")

    def pids(self) -> list[int]:
        """The server process and its descendants."""
        return process_tree(self.proc.pid)

    def log_lines(self) -> int:
        """Lines written to the log so far."""
        self._log.flush()
        count = 0
        with self.log_path.open("rb") as f:
            while chunk := f.read(1 << 20):
                count += chunk.count(b"\n")
        return count

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the log, for error messages."""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def dropped_spans(self) -> float | None:
        """svc_telemetry_dropped_total{signal="spans"}, all reasons, from the admin listener (svc variants only)."""
        if self.launch.admin_port is None:
            return None
        with contextlib.suppress(OSError, http.client.HTTPException):
            status, body = _get(self.launch.admin_port, "/metrics", timeout=5.0)
            if status == 200:
                lines = body.decode().splitlines()
                # One series per reason (queue_full, export_failed, ...): their sum is every lost span.
                spans = [line for line in lines if line.startswith("svc_telemetry_dropped_total{")]
                return sum(float(line.split()[-1]) for line in spans if 'signal="spans"' in line)
        return None

    def stop(self) -> tuple[float, bool]:
        """SIGTERM, wait; returns (seconds to exit, whether it had to be killed)."""
        start = time.monotonic()
        killed = False
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                killed = True
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        return time.monotonic() - start, killed


# --- load -----------------------------------------------------------------------------------------------------


def wrk_command(port: int, path: str, seconds: int, connections: int, cpus: Sequence[int]) -> list[str]:
    """One wrk thread on the load cores, closed loop, our Lua reporter appended."""
    return [
        "taskset",
        "-c",
        ",".join(map(str, cpus)),
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(WRK_SCRIPT),
        f"http://127.0.0.1:{port}{path}",
    ]


def parse_wrk(output: str) -> dict[str, Any]:
    """The BENCH_JSON line of wrk_report.lua."""
    for line in output.splitlines():
        if line.startswith("BENCH_JSON "):
            parsed: dict[str, Any] = orjson.loads(line.removeprefix("BENCH_JSON "))
            return parsed
    raise RuntimeError(f"wrk printed no report:\n{output}")


def run_wrk(port: int, path: str, seconds: int, connections: int, cpus: Sequence[int]) -> dict[str, Any]:
    """Run wrk to completion and return its report."""
    out = subprocess.run(
        wrk_command(port, path, seconds, connections, cpus),
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    return parse_wrk(out.stdout)


# --- one measured run -----------------------------------------------------------------------------------------


@dataclass
class Context:
    """Shared by every run of one benchmark."""

    settings: Settings
    workdir: Path
    db: Path
    backends: Backends
    go_binary: Path | None
    postgres_url: str | None = None  # the seeded database of the -pg variants


def _start(ctx: Context, key: str, tag: str, extra_env: dict[str, str] | None = None) -> tuple[Server, float]:
    launch = launch_for(key, ctx.db, ctx.backends, ctx.go_binary, ctx.settings.baseline, ctx.postgres_url)
    for name, value in (extra_env or {}).items():
        # PYTHONPATH may already name the baseline tree: both stay on it.
        old = launch.env.get(name) if name == "PYTHONPATH" else None
        launch.env[name] = f"{value}{os.pathsep}{old}" if old else value
    server = Server(launch, ctx.settings.server_cpu, ctx.workdir / f"{key}-{tag}.log")
    try:
        startup = server.wait_ready(ctx.settings.path)
    except Exception:
        server.stop()
        raise
    return server, startup


def _finish(ctx: Context, server: Server) -> tuple[float, bool]:
    stopped = server.stop()
    if not ctx.settings.keep_logs:
        server.log_path.unlink(missing_ok=True)
    return stopped


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
    server, startup = _start(ctx, key, f"r{round_no}")
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
        hwm_kib = status_kib(pids, "VmHWM")
        time.sleep(1.2)  # one export interval, so the receiver has the spans of the last batch
        lines1, dropped1 = server.log_lines(), server.dropped_spans()
        spans1, envelopes1 = ctx.backends.spans.value, ctx.backends.envelopes.value
    finally:
        stop_s, killed = _finish(ctx, server)
    requests = int(wrk["requests"])
    seconds = wrk["duration_us"] / 1e6
    errors = sum(int(wrk[k]) for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts"))
    per_request = max(requests, 1)
    return {
        "variant": key,
        "round": round_no,
        "requests": requests,
        "seconds": round(seconds, 3),
        "rps": round(requests / seconds, 1),
        "errors": errors,
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


def rss_check(ctx: Context, key: str) -> dict[str, Any]:
    """Load the variant for rss_seconds, sampling VmRSS every second; flat means no growth after warm-up."""
    s = ctx.settings
    # Python servers get the heap probe (a SIGUSR1 handler); the Go binary would die of the signal.
    heap_dir = None if key == "f" else ctx.workdir / "heap"
    server, startup = _start(ctx, key, "rss", install_hook(heap_dir) if heap_dir else None)
    samples: list[tuple[float, float]] = []
    heap: dict[str, Any] = {}
    try:
        port = server.launch.port
        if s.warmup > 0:
            run_wrk(port, s.path, s.warmup, s.connections, s.load_cpus)
        start = time.monotonic()
        load = subprocess.Popen(
            wrk_command(port, s.path, s.rss_seconds, s.connections, s.load_cpus),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        while load.poll() is None:
            elapsed = time.monotonic() - start
            samples.append((round(elapsed, 2), status_kib(server.pids(), "VmRSS") / 1024))
            # The heap at the two points the RSS verdict compares: the end of the first quarter and the end.
            for point, at in (("start", s.rss_seconds / 4), ("end", s.rss_seconds - 2)):
                if heap_dir is not None and point not in heap and elapsed >= at:
                    heap[point] = heap_stats(server.proc.pid, heap_dir)
            time.sleep(1.0)
        out = load.stdout.read() if load.stdout is not None else ""
        wrk = parse_wrk(out)
        dropped = server.dropped_spans()
        hwm = status_kib(server.pids(), "VmHWM") / 1024
    finally:
        stop_s, killed = _finish(ctx, server)
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


RSS_FLAT_MIB = 4.0


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


# --- the whole benchmark --------------------------------------------------------------------------------------


def seed_database(path: Path) -> None:
    """svc's schema with the one link every variant serves, in WAL mode as svc leaves it."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(SCHEMA)
        conn.execute(
            "INSERT INTO links (slug, url, created_at) VALUES (?, ?, ?)",
            (SLUG, "https://example.com/docs", "2026-11-25T17:00:00.000Z"),
        )
        conn.commit()
    finally:
        conn.close()


def build_go(out_dir: Path) -> Path | None:
    """go build bench/go into out_dir; None (variant f skipped) without Go."""
    go = shutil.which("go")
    if go is None:
        return None
    binary = out_dir / "linkserver"
    subprocess.run([go, "build", "-o", str(binary), "."], cwd=BENCH / "go", check=True, timeout=600)
    return binary


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


@contextlib.contextmanager
def _context(settings: Settings, keys: Sequence[str]) -> Iterator[Context]:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: install it with `sudo apt-get install -y wrk`")
    if shutil.which("taskset") is None:
        raise SystemExit("taskset not found: install util-linux")
    with tempfile.TemporaryDirectory(prefix="svc-bench-") as tmp:
        workdir = Path(tmp)
        db = workdir / "bench.db"
        seed_database(db)
        go_binary = build_go(workdir) if "f" in keys else None
        with running_backends(settings.load_cpus) as backends, postgres_for(keys, SLUG, settings.load_cpus) as url:
            yield Context(settings, workdir, db, backends, go_binary, url)


def run_benchmark(settings: Settings) -> dict[str, Any]:
    """Every selected variant, interleaved over the rounds; then the RSS check if asked."""
    say = settings.progress
    keys = [k for k in settings.variants if k.removesuffix(BASELINE_SUFFIX) in VARIANTS]
    unknown = {k for k in settings.variants if k.removesuffix(BASELINE_SUFFIX) not in VARIANTS}
    if unknown:
        raise SystemExit(f"unknown variants: {', '.join(sorted(unknown))}; known: {', '.join(VARIANTS)}")
    notes: list[str] = []
    if "f" in keys and shutil.which("go") is None:
        keys.remove("f")
        notes.append("variant (f) skipped: Go is not installed")
    result: dict[str, Any] = {"notes": notes, "variants": {}, "rss": {}}
    with _context(settings, [*keys, *(settings.rss_variants if settings.rss_seconds else [])]) as ctx:
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
