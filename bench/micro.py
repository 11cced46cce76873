"""In-process microbenchmark: CPU time per request of the ASGI app alone, no HTTP server, no sockets.

    uv run python -m bench.micro [--requests 20000] [--concurrency 32]

Drives bare (variant a's app) and svc's public app (variant b: OTLP export to a live receiver, access lines to a
file, Sentry armed) with the same scope, pinned to one core, and reports process CPU µs per request (all threads,
so the span export thread is included). Meant for iterating on the request path: CPU time is not skewed by other
load on the machine the way req/s is.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvloop
from litestar.types import ASGIApp

from bench.receivers import running_backends
from bench.servers import bare_app
from harness.seed import LINK_PATH, seed_database
from svc.buildinfo import read_build_info
from svc.config import Config
from svc.logs import configure_logging
from svc.service import Service

__all__ = ["main"]


def _scope(path: str) -> Any:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"wrk"), (b"accept", b"*/*")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def _start(app: ASGIApp) -> tuple[asyncio.Queue[Any], asyncio.Queue[Any], asyncio.Future[Any]]:
    startup: asyncio.Queue[Any] = asyncio.Queue()
    events: asyncio.Queue[Any] = asyncio.Queue()
    await startup.put({"type": "lifespan.startup"})
    lifespan_scope: Any = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    lifespan: asyncio.Future[Any] = asyncio.ensure_future(app(lifespan_scope, startup.get, events.put))
    started = await events.get()
    if started["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"startup failed: {started}")
    return startup, events, lifespan


async def _load(app: ASGIApp, requests: int, concurrency: int, path: str) -> None:
    statuses: list[int] = []

    async def receive() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def worker(n: int) -> None:
        for _ in range(n):
            await app(_scope(path), receive, send)

    await asyncio.gather(*(worker(requests // concurrency) for _ in range(concurrency)))
    if set(statuses) != {200}:
        raise RuntimeError(f"unexpected statuses {set(statuses)}")


async def _session(
    apps: dict[str, tuple[ASGIApp, Callable[[], object]]], rounds: int, requests: int, concurrency: int, path: str
) -> dict[str, list[float]]:
    """Interleaved rounds; each app's CPU µs/request per round, its span export flushed inside the round."""
    started = {name: await _start(app) for name, (app, _) in apps.items()}
    for app, flush in apps.values():
        await _load(app, requests // 5, concurrency, path)  # warm-up
        flush()
    results: dict[str, list[float]] = {name: [] for name in apps}
    done = (requests // concurrency) * concurrency
    for _ in range(rounds):
        for name, (app, flush) in apps.items():
            cpu0 = time.process_time()
            await _load(app, requests, concurrency, path)
            flush()
            results[name].append((time.process_time() - cpu0) * 1e6 / done)
    for startup, events, lifespan in started.values():
        await startup.put({"type": "lifespan.shutdown"})
        await events.get()
        with contextlib.suppress(Exception):
            await lifespan
    return results


def main(argv: list[str] | None = None) -> int:
    """Measure bare and svc in this process, interleaved, pinned to one core; medians over the rounds."""
    parser = argparse.ArgumentParser(prog="python -m bench.micro")
    parser.add_argument("--requests", type=int, default=3200, help="requests per app per round")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--cpu", type=int, default=0)
    parser.add_argument("--load-cpu", type=int, default=1)
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for svc (repeatable)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, running_backends([args.load_cpu]) as backends:
        os.sched_setaffinity(0, {args.cpu})
        db = Path(tmp) / "bench.db"
        seed_database(db)
        env = {
            "DATABASE_PATH": str(db),
            "OTEL_EXPORTER_OTLP_ENDPOINT": backends.otlp_endpoint("live"),
            "SENTRY_DSN": backends.sentry_dsn("live"),
        }
        env.update(item.split("=", 1) for item in args.env)
        config = Config.from_env({k: v for k, v in env.items() if v != ""}.get)
        build = read_build_info()
        log_file = (Path(tmp) / "access.log").open("w")
        configure_logging(config, build.version, log_file)
        service = Service(config, build)
        svc = service.app
        flush = getattr(service.parts.telemetry.tracer_provider, "force_flush", lambda: True)
        apps = {"bare": (bare_app(str(db)), lambda: True), "svc": (svc, flush)}
        spans0 = backends.spans.value
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            results = runner.run(_session(apps, args.rounds, args.requests, args.concurrency, LINK_PATH))
        spans = backends.spans.value - spans0
    # Other load on the machine only ever adds CPU time (cache misses, migrations): the minimum is the best guess
    # of the cost itself, the median says how steady the rounds were.
    bare, ours = min(results["bare"]), min(results["svc"])
    for name, values in results.items():
        rounds = " ".join(f"{v:.0f}" for v in values)
        print(f"{name:>4}: min {min(values):6.1f}  median {statistics.median(values):6.1f} CPU µs/request  ({rounds})")
    # Each round's pair ran back to back, so a slow spell on the machine hits both: the median pair is steadiest.
    pairs = sorted(zip(results["bare"], results["svc"], strict=True), key=lambda p: p[0] / p[1])
    pair_bare, pair_svc = pairs[len(pairs) // 2]
    print(
        f"overhead {ours - bare:.1f} µs/request (minimums), {pair_svc - pair_bare:.1f} (median pair); "
        f"capacity svc/bare {bare / ours:.1%} (minimums), {pair_bare / pair_svc:.1%} (median pair); spans {spans}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
