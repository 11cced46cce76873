"""A bounded loopback load generator: an asyncio HTTP/1.1 client loop that keeps one record per request.

Bounded three ways: a request count, a duration and a concurrency limit. It refuses any target that is not a
loopback address. The client is raw asyncio streams, not httpx: httpx's async pool tops out near 350 req/s
on this machine (measured), below half of svc's capacity, and hides whether a connection failed before or after
the server answered. Open loop (a fixed rate, the way real clients arrive) or closed loop (as fast as `concurrency`
workers go, to measure capacity). wrk, when installed, measures capacity faster than Python can; it cannot say
what happened to each request, so the per-request accounting of the shutdown test always uses this client.

Every request carries its own `x-request-id`, which svc echoes and writes on its access line: a request is
*accepted* exactly when the service logged it, which is how a failure of an accepted request is told apart from
a connection refused after the listener closed.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
import uvloop

from harness.mix import Call, Plan
from harness.traceresponse import parse_traceresponse

__all__ = [
    "Outcome",
    "generate",
    "percentile",
    "require_loopback",
    "run_load",
    "summarize",
    "wrk_capacity",
]

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
# Most requests a single run may make, whatever the caller asks: a runaway loop stays bounded.
HARD_MAX_REQUESTS = 2_000_000
HARD_MAX_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one request, from the client's side."""

    request_id: str
    call: Call
    started: float  # seconds since the run started
    latency: float  # seconds, until the whole response was read or the error
    status: int | None  # None when no response arrived
    error: str | None  # "refused", "no-response", "disconnected", "timeout"; None with a response
    trace_id: str | None
    sampled: bool
    retried: bool = False  # a reused keep-alive connection turned out closed; sent again on a new one

    @property
    def failed(self) -> bool:
        """No response, or a 5xx that was not injected on purpose."""
        if self.status is None:
            return True
        return self.status >= 500 and not self.call.injected


def require_loopback(url: str) -> None:
    """Raise ValueError unless url points at this machine: the harness never loads anything else."""
    host = urlsplit(url).hostname or ""
    if host not in LOOPBACK_HOSTS:
        raise ValueError(f"refusing to send load to {host!r}: loopback only ({', '.join(sorted(LOOPBACK_HOSTS))})")


class _Connection:
    """One keep-alive HTTP/1.1 connection: asyncio streams, hand-parsed responses (svc always sends a length)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.usable = True

    @classmethod
    async def open(cls, host: str, port: int) -> _Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def exchange(self, request: bytes, head_only: bool) -> tuple[int, dict[str, str]]:
        self.writer.write(request)
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        elif "content-length" in headers and not head_only:
            await self.reader.readexactly(int(headers["content-length"]))
        elif status not in (204, 304) and not head_only:
            await self.reader.read()  # no length: the body runs to the end of the connection
            self.usable = False
        if headers.get("connection", "").lower() == "close":
            self.usable = False
        return status, headers

    def close(self) -> None:
        self.usable = False
        self.writer.close()


def _request_bytes(call: Call, host: str, request_id: str, close: bool) -> bytes:
    body = b"" if call.json is None else orjson.dumps(call.json)
    lines = [
        f"{call.method} {call.path} HTTP/1.1",
        f"host: {host}",
        f"x-request-id: {request_id}",
        "user-agent: svc-reliability-load",
    ]
    if call.json is not None:
        lines.append("content-type: application/json")
    if body or call.method in ("POST", "PUT", "PATCH"):
        lines.append(f"content-length: {len(body)}")
    if close:
        lines.append("connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


def _trace(headers: dict[str, str]) -> tuple[str | None, bool]:
    parsed = parse_traceresponse(headers.get("traceresponse"))
    return (None, False) if parsed is None else (parsed.trace_id, parsed.sampled)


class _Client:
    """Sends one request at a time per call on pooled keep-alive connections, and records what happened."""

    def __init__(self, base_url: str, plan: Plan, request_timeout: float, new_connections: bool) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.host_header = parts.netloc
        self.plan = plan
        self.request_timeout = request_timeout
        self.new_connections = new_connections
        self.prefix = os.urandom(4).hex()
        self.origin = time.perf_counter()  # uvloop's loop.time() has millisecond resolution: too coarse here
        self.idle: list[_Connection] = []
        self.outcomes: list[Outcome] = []

    def _reusable(self) -> _Connection | None:
        # A server closes idle keep-alive connections (uvicorn after 5 s): skip any it has closed already.
        while self.idle and not self.new_connections:
            conn = self.idle.pop()
            if not conn.reader.at_eof() and not conn.writer.is_closing():
                return conn
            conn.close()
        return None

    async def _attempt(
        self, call: Call, request_id: str, conn: _Connection | None
    ) -> tuple[int | None, dict[str, str], str | None, _Connection | None]:
        if conn is None:
            try:
                conn = await _Connection.open(self.host, self.port)
            except OSError:
                return None, {}, "refused", None
        request = _request_bytes(call, self.host_header, request_id, self.new_connections)
        try:
            status, headers = await conn.exchange(request, call.method == "HEAD")
        except asyncio.IncompleteReadError as exc:
            return None, {}, "disconnected" if exc.partial else "no-response", conn
        except (OSError, asyncio.LimitOverrunError, ValueError, IndexError):
            return None, {}, "no-response", conn
        return status, headers, None, conn

    async def one(self, index: int) -> Outcome:
        call = self.plan(index)
        request_id = f"load-{self.prefix}-{index}"
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        headers: dict[str, str] = {}
        conn: _Connection | None = None
        retried = False
        try:
            async with asyncio.timeout(self.request_timeout):
                reused = self._reusable()
                status, headers, error, conn = await self._attempt(call, request_id, reused)
                if error == "no-response" and reused is not None:
                    # The keep-alive race: the server closed this idle connection as the request went out, so
                    # it never read it. Clients resend on a new connection (RFC 9112 9.3.1); so does this one.
                    reused.close()
                    retried = True
                    status, headers, error, conn = await self._attempt(call, request_id, None)
        except TimeoutError:
            error = "timeout"
        if conn is not None:
            if error is None and conn.usable and not self.new_connections:
                self.idle.append(conn)
            else:
                conn.close()
        trace_id, sampled = _trace(headers)
        latency = time.perf_counter() - started
        outcome = Outcome(request_id, call, started - self.origin, latency, status, error, trace_id, sampled, retried)
        self.outcomes.append(outcome)
        return outcome

    def close(self) -> None:
        for conn in self.idle:
            conn.close()
        self.idle.clear()


async def generate(
    base_url: str,
    plan: Plan,
    *,
    duration: float,
    max_requests: int,
    concurrency: int,
    rate: float | None = None,
    request_timeout: float = 15.0,
    new_connections: bool = False,
    stop: Callable[[], bool] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Send plan(0), plan(1), ... to base_url until duration, max_requests or stop(); return every outcome.

    rate=None is a closed loop of `concurrency` workers; a rate is an open loop that starts one request every
    1/rate s (at most `concurrency` in flight: when all are busy the schedule waits, and the achieved rate says so).
    Connections are kept alive and reused unless new_connections. Requests already started when the run ends
    are awaited, never abandoned. Error kinds: "refused" (no connection), "no-response" (the connection closed
    before any response byte: on a reused connection this may be the server closing an idle keep-alive
    connection, so only the service's access log can say whether it was accepted), "disconnected" (a
    response was cut short), "timeout".
    """
    require_loopback(base_url)
    duration = min(duration, HARD_MAX_SECONDS)
    max_requests = min(max_requests, HARD_MAX_REQUESTS)
    client = _Client(base_url, plan, request_timeout, new_connections)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    deadline = t0 + duration

    def done() -> bool:
        return loop.time() >= deadline or (stop is not None and stop())

    async def send(index: int) -> None:
        outcome = await client.one(index)
        if on_outcome is not None:
            on_outcome(outcome)

    try:
        if rate is None:
            counter = iter(range(max_requests))

            async def worker() -> None:
                for index in counter:
                    if done():
                        return
                    await send(index)

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        else:
            slots = asyncio.Semaphore(concurrency)
            tasks: set[asyncio.Task[None]] = set()

            async def bounded(index: int) -> None:
                try:
                    await send(index)
                finally:
                    slots.release()

            for index in range(max_requests):
                due = t0 + index / rate
                if due >= deadline or done():
                    break
                if due > loop.time():
                    await asyncio.sleep(due - loop.time())
                    if done():
                        break
                await slots.acquire()
                task = asyncio.create_task(bounded(index))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.gather(*tasks)
    finally:
        client.close()
    return client.outcomes


def run_load(base_url: str, plan: Plan, **kwargs: Any) -> list[Outcome]:
    """generate() on a fresh uvloop event loop, from synchronous code (a test, or a thread)."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(generate(base_url, plan, **kwargs))


def percentile(values: Iterable[float], q: float) -> float:
    """The q-th percentile (0-100) by the nearest-rank method; NaN for no values."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summarize(outcomes: list[Outcome]) -> dict[str, Any]:
    """Counts, achieved rate and latency percentiles (ms) of a run, as plain JSON-able values."""
    answered = [o for o in outcomes if o.status is not None]
    span = max((o.started + o.latency for o in outcomes), default=0.0) - min((o.started for o in outcomes), default=0.0)
    latencies = [o.latency for o in answered if not o.call.injected]
    return {
        "requests": len(outcomes),
        "answered": len(answered),
        "failed": sum(o.failed for o in outcomes),
        "injected": sum(o.call.injected for o in outcomes),
        "resent_after_keepalive_race": sum(o.retried for o in outcomes),
        "errors": dict(Counter(o.error for o in outcomes if o.error is not None)),
        "statuses": {str(k): v for k, v in sorted(Counter(o.status for o in answered).items())},
        "achieved_rps": round(len(outcomes) / span, 1) if span > 0 else 0.0,
        "p50_ms": round(percentile(latencies, 50) * 1000, 2) if latencies else None,
        "p90_ms": round(percentile(latencies, 90) * 1000, 2) if latencies else None,
        "p99_ms": round(percentile(latencies, 99) * 1000, 2) if latencies else None,
        "max_ms": round(max(latencies) * 1000, 2) if latencies else None,
    }


def wrk_capacity(url: str, seconds: float = 3.0, connections: int = 32) -> float | None:
    """Requests per second wrk reaches on url (one thread, closed loop); None when wrk is not installed."""
    require_loopback(url)
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    args = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", url]
    out = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 30, check=False).stdout
    match = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    return float(match[1]) if match else None


def closed_loop_capacity(base_url: str, plan: Plan, seconds: float, concurrency: int = 32) -> float:
    """Requests per second this Python client reaches against base_url (its own ceiling included)."""
    start = time.monotonic()
    outcomes = run_load(base_url, plan, duration=seconds, max_requests=HARD_MAX_REQUESTS, concurrency=concurrency)
    return len(outcomes) / max(time.monotonic() - start, 1e-9)
